#!/usr/bin/perl
# SPDX-License-Identifier: MIT
#
# DKIM with Mail::DKIM (Debian's libmail-dkim-perl), the other
# implementation beside opendkim in t_milter.sh:
#
#   dkim.pl sign DOMAIN SELECTOR KEYFILE <message >signed
#	prints the message with a DKIM-Signature (relaxed/simple, rsa-sha256)
#	on top, CRLF line ends.
#   dkim.pl verify NAMESERVER <message
#	verifies every signature, asking only NAMESERVER (the lab's DNS) for
#	the keys; prints one line per signature, e.g.
#	`pass d=example.test s=sel`, and `result=pass` last; exits 0 only if
#	the result is pass.
#
# Input may have LF or CRLF line ends (a Maildir file has LF).
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::TextWrap;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my $cmd = shift // '';
binmode STDIN;
binmode STDOUT;
my $msg = do { local $/; <STDIN> };
$msg =~ s/\r?\n/\r\n/g;

if ($cmd eq 'sign') {
	my ($domain, $selector, $keyfile) = @ARGV;
	die "usage: dkim.pl sign DOMAIN SELECTOR KEYFILE\n" unless $keyfile;
	my $dkim = Mail::DKIM::Signer->new(
		Algorithm => 'rsa-sha256',
		Method => 'relaxed/simple',
		Domain => $domain,
		Selector => $selector,
		KeyFile => $keyfile,
		Headers => 'from:to:subject:date:message-id',
	);
	$dkim->PRINT($msg);
	$dkim->CLOSE;
	# Folded (Mail::DKIM::TextWrap) as signers send it: several lines.
	(my $h = $dkim->signature->as_string) =~ s/\r?\n/\r\n/g;
	print $h, "\r\n", $msg;
	exit 0;
} elsif ($cmd eq 'verify') {
	my ($ns) = @ARGV;
	die "usage: dkim.pl verify NAMESERVER\n" unless $ns;
	Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
		nameservers => [$ns], recurse => 1, retry => 2, tcp_timeout => 5,
		udp_timeout => 5));
	my $dkim = Mail::DKIM::Verifier->new;
	$dkim->PRINT($msg);
	$dkim->CLOSE;
	foreach my $sig ($dkim->signatures) {
		printf "%s d=%s s=%s%s\n", $sig->result, $sig->domain // '',
		    $sig->selector // '',
		    $sig->result_detail =~ /\((.*)\)/ ? " ($1)" : '';
	}
	printf "result=%s\n", $dkim->result;
	exit($dkim->result eq 'pass' ? 0 : 1);
}
die "usage: dkim.pl sign DOMAIN SELECTOR KEYFILE | verify NAMESERVER\n";
