# The spork appliance disk image. Included by the top-level Makefile, or:
#   make -f Makefile -f image/image.mk image
#   make -f Makefile -f image/image.mk image-test
# image       image/out/spork.raw and image/out/spork.qcow2 (image/build-image)
# image-test  boot it in QEMU between the lab's client and server
#             (image/test-image); IMAGE_ACCEL=auto (default: KVM if it
#             boots the kernel, else TCG), kvm or tcg
# Both need root; image/README.md says what they install and do.

IMAGE_OUT	?= image/out
IMAGE_ACCEL	?= auto

image-deps:
	@missing=; for p in mmdebstrap e2fsprogs dosfstools mtools grub-pc-bin \
	    fdisk qemu-utils qemu-system-x86 swaks iputils-ping; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		    grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "image-deps: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

image: image-deps build/sporkd build/sporkctl
	OUT=$(abspath $(IMAGE_OUT)) image/build-image

# Boots what `make image` built last; the lab's tools come with `deps`.
image-test: image-deps deps
	OUT=$(abspath $(IMAGE_OUT)) ACCEL=$(IMAGE_ACCEL) image/test-image

image-clean:
	rm -rf $(IMAGE_OUT)

.PHONY: image image-deps image-test image-clean
