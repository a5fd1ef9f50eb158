#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The web console in a real browser: Debian's headless chromium driven
by Selenium (python3-selenium, chromium-driver). Called by t_console.sh
inside the lab's bridge namespace, where spork-console listens.

Prints one line per check, "ok   NAME" or "FAIL NAME: why", as lib.sh
does, and exits 1 if any failed. Saves screenshots of the dashboard, the
tracking center and the quarantine into --artifacts.
"""
import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

failed = 0


def wait_ready(d, css):
    """Wait until an element of the page expected (css) is there and the
    document has finished loading: a form's POST is answered with a
    redirect, so the first new document may not be the last, and an
    element found in it goes stale ("does not belong to the document")."""
    WebDriverWait(d, 60).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, css)))
    WebDriverWait(d, 60).until(
        lambda drv: drv.execute_script("return document.readyState") ==
        "complete")


def gone_away(e):
    """Whether e says the element's document went away: a stale element,
    or chromedriver's "does not belong to the document" when the page is
    replaced while it looks the element up."""
    return isinstance(e, StaleElementReferenceException) or \
        "does not belong to the document" in str(e)


def retry(fn):
    """Runs fn, which loads its page itself, again when the page went away
    under it (chromedriver: "does not belong to the document", a stale
    element): a document replaced while it was read is the browser's
    timing, not the console's answer. Anything else is raised."""
    for i in range(5):
        try:
            return fn()
        except WebDriverException as e:
            if i == 4 or not gone_away(e):
                raise
            time.sleep(1)


def open_page(d, url, css):
    """Loads url and waits for its element css, again if the page went."""
    def load():
        d.get(url)
        wait_ready(d, css)
    retry(load)


def fill(d, url, fields, button):
    """Loads the form at url, types each (id, text) of fields, and returns
    its button, unclicked: all again if the page went while typing."""
    def load():
        d.get(url)
        wait_ready(d, "#" + button)
        for fid, text in fields:
            d.find_element(By.ID, fid).send_keys(text)
        return d.find_element(By.ID, button)
    return retry(load)


def quarantine_ids(d, url):
    """The ids the quarantine page lists, read on a page that stayed."""
    def load():
        open_page(d, url + "/quarantine", "main")
        return [r.get_attribute("data-id") for r in
                d.find_elements(By.CSS_SELECTOR, "tr.qmsg")]
    return retry(load)


def click(el):
    """Clicks el, which loads a new page: the page may go while the click
    is answered, which is what the click was for."""
    try:
        el.click()
    except WebDriverException as e:
        if not gone_away(e):
            raise


def stale(el):
    """A wait's condition: el's page is gone."""
    def check(_):
        try:
            el.is_enabled()
            return False
        except WebDriverException as e:
            if gone_away(e):
                return True
            raise
    return check


def click_and_wait(d, el, css):
    """Click what loads a new page, then wait for that page: the old one
    goes stale and an element of the new one (css) is there. A loaded
    machine answers slowly; reading the page before it came is a race."""
    click(el)
    WebDriverWait(d, 60).until(stale(el))
    wait_ready(d, css)


def result(name, good, why=""):
    global failed
    if good:
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {why}", flush=True)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--ignore-certificate-errors",
              "--window-size=1100,900", "--hide-scrollbars"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                            options=opts)


def login(d, url, user, password):
    button = fill(d, url + "/login", (("user", user),
                                      ("password", password)), "login")
    click(button)
    # A failed login is answered after a second or more: wait for the
    # answer's page, not the form's; a good one is a redirect to the
    # dashboard, whose page is the one to wait for.
    WebDriverWait(d, 60).until(stale(button))
    WebDriverWait(d, 60).until(
        lambda drv: "/login" in drv.current_url or
        drv.title.startswith("Dashboard"))
    wait_ready(d, "body")


def shot(d, path):
    # The whole page, as tall as it is (within reason), small PNG.
    h = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1100, max(600, min(int(h) + 40, 1400)))
    d.save_screenshot(path)
    d.set_window_size(1100, 900)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rcpt", required=True, help="a recipient to search for")
    ap.add_argument("--release", required=True, help="quarantine id to release")
    ap.add_argument("--xss-msgid", required=True,
                    help="a Message-ID part of a mail whose Subject, sender "
                    "and Message-ID carry <script>")
    ap.add_argument("--xss-subject", required=True, help="its Subject")
    ap.add_argument("--artifacts", required=True)
    a = ap.parse_args()
    os.makedirs(a.artifacts, exist_ok=True)
    d = browser()
    try:
        # A wrong password: refused, the login form again.
        login(d, a.url, a.user, a.password + "x")
        err = d.find_elements(By.ID, "login-error")
        result("browser: a wrong password is refused",
               err and "Wrong" in err[0].text and "/login" in d.current_url,
               d.current_url + " " + d.title + ": " +
               d.find_element(By.TAG_NAME, "body").text[:200])

        login(d, a.url, a.user, a.password)
        result("browser: logged in, on the dashboard",
               d.title.startswith("Dashboard"), d.title)
        cookies = {c["name"]: c for c in d.get_cookies()}
        c = cookies.get("__Host-spork_session", {})
        result("browser: __Host- session cookie Secure, HttpOnly, "
               "SameSite=Strict, Path=/, no Domain",
               c.get("secure") and c.get("httpOnly") and
               c.get("sameSite") == "Strict" and c.get("path") == "/" and
               not c.get("domain", "127.0.0.1").startswith("."), repr(c))

        def dashboard():
            # Read on a fresh load if the first went away under us.
            if not d.find_elements(By.ID, "workers"):
                open_page(d, a.url + "/", "#workers")
            svg = d.find_elements(By.CSS_SELECTOR, "svg#flow")
            return (d.find_elements(By.CSS_SELECTOR, "svg#flow circle.pt"),
                    [g.get_attribute("data-verdict") for g in
                     d.find_elements(By.CSS_SELECTOR, "svg#flow g.series")],
                    int(svg[0].get_attribute("data-total")) if svg else 0,
                    d.find_element(By.ID, "scanner").text,
                    d.find_element(By.ID, "workers").text,
                    d.find_element(By.ID, "tls").text)
        pts, series, total, eng, wk, tls = retry(dashboard)
        result("browser: the chart has data points after the lab's mail",
               len(pts) >= 1 and total >= 1,
               f"{len(pts)} points, total {total}")
        result("browser: the chart has a clean and a virus series",
               "clean" in series and "virus" in series, repr(series))
        result("browser: scanner card shows the engine", "ClamAV" in eng, eng)
        result("browser: worker pool card lists workers",
               "pid=" in wk and "state=" in wk, wk)
        result("browser: TLS coverage card", "coverage.scanned_pct" in tls)
        shot(d, os.path.join(a.artifacts, "console-dashboard.png"))

        # Tracking center: find a message by recipient, open its story.
        click_and_wait(d, fill(d, a.url + "/track", (("q-rcpt", a.rcpt),),
                               "search"), "main")
        rows = d.find_elements(By.CSS_SELECTOR, "table#results tr td a")
        result("browser: tracking search by recipient finds messages",
               len(rows) >= 1, d.find_element(By.TAG_NAME, "main").text[:300])
        shot(d, os.path.join(a.artifacts, "console-tracking.png"))
        if rows:
            click_and_wait(d, rows[0], "#message")
            msg = d.find_element(By.ID, "message").text
            rc = d.find_element(By.ID, "recipients").text
            result("browser: the message's story shows every field",
                   all(k in msg for k in ("sender", "verdict", "reply",
                                           "message_id", "tls")), msg[:200])
            result("browser: the story lists the recipient with its answer",
                   a.rcpt in rc and "250" in rc, rc)

        # A sender's markup is text: no element of its own on the page.
        # Its record may still be in the writer's batch (250 ms): asked
        # again for a few seconds.
        for _ in range(20):
            click_and_wait(d, fill(d, a.url + "/track",
                                   (("q-msgid", a.xss_msgid),), "search"),
                           "main")
            if d.find_elements(By.CSS_SELECTOR, "table#results tr td a"):
                break
            time.sleep(0.5)
        res = d.find_elements(By.CSS_SELECTOR, "table#results")
        txt = res[0].text if res else ""
        result("browser: the <script> mail's Subject and sender are text "
               "in the results",
               a.xss_subject in txt and "?<script>x</script>?@" in txt and
               d.find_elements(By.TAG_NAME, "script") == [], txt[:300])
        links = d.find_elements(By.CSS_SELECTOR, "table#results tr td a")
        if links:
            click_and_wait(d, links[0], "#message")
            msg = d.find_element(By.ID, "message").text
            result("browser: the <script> mail's story shows Subject, "
                   "sender and Message-ID as text",
                   a.xss_subject in msg and "?<script>x</script>?@" in msg and
                   "alert(2)</script>@" in msg and
                   d.find_elements(By.TAG_NAME, "script") == [], msg[:400])
        else:
            result("browser: the <script> mail found", False, txt[:300])

        # Quarantine: list, view, release behind a confirmation page.
        ids = quarantine_ids(d, a.url)
        result("browser: the quarantine lists the EICAR message",
               a.release in ids, repr(ids))
        shot(d, os.path.join(a.artifacts, "console-quarantine.png"))
        open_page(d, a.url + "/quarantine/show?id=" + a.release, "#headers")
        hdr = d.find_element(By.ID, "headers").text
        env = d.find_element(By.ID, "envelope").text
        result("browser: the quarantined message's headers and envelope",
               "Subject:" in hdr and "verdict: virus" in env, hdr[:200])
        txt = d.find_element(By.ID, "text").text
        result("browser: the quarantined message's text, escaped (the "
               "sender's <script> shown as text, not run)",
               "Invoice <script>alert(1)</script> & more" in txt and
               d.find_elements(By.CSS_SELECTOR, "#text script") == [],
               txt[:200])
        open_page(d, a.url + "/quarantine/release?id=" + a.release, "main")
        result("browser: release asks for confirmation first",
               d.find_elements(By.ID, "confirm") != [], d.title)
        click_and_wait(d, d.find_element(By.ID, "confirm"), "#result")
        res = d.find_element(By.ID, "result").text
        result("browser: release confirmed, sporkd released it",
               res.startswith("ok released") and "250" in res, res)
        ids = quarantine_ids(d, a.url)
        result("browser: the released message left the quarantine",
               a.release not in ids, repr(ids))

        # Logging out ends the session on the server. The button is
        # clicked on a page that stayed (chromedriver may answer a click
        # in a page being replaced with "does not belong to the
        # document"), and its answer is a redirect to the login page.
        open_page(d, a.url + "/", "header form button")
        click(d.find_element(By.CSS_SELECTOR, "header form button"))
        WebDriverWait(d, 60).until(lambda drv: "/login" in drv.current_url)
        wait_ready(d, "body")
        d.get(a.url + "/")
        result("browser: after logout the dashboard wants a login",
               "/login" in d.current_url, d.current_url)
    except WebDriverException as e:
        result("browser: no WebDriver error", False, str(e).splitlines()[0])
    finally:
        d.quit()
    return 1 if failed else 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"browser test: {time.time() - t0:.1f} s", flush=True)
    sys.exit(rc)
