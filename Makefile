# handoff: build and install the OCF agents.
#
#   make install                 build (release, static) and install under /usr
#   make install DESTDIR=/pkg    stage into a package root
#   make metadata                refresh ocf-metadata/ from the binaries
#   make bindir                  print where the agents are built
#   make deb                     Debian packages handoff and
#                                handoff-folocks-dkms in target/deb/
#
# Installs, per agent NAME:
#   $(OCF_ROOT)/resource.d/handoff/NAME        the agent (ocf:handoff:NAME)
#   $(SBINDIR)/handoff-NAME                     the same binary, for CLI use
#   $(MANDIR)/man7/ocf_handoff_NAME.7           its man page
#   $(DATADIR)/handoff/metadata/NAME.xml        its metadata XML
#
# STATIC=1 (the default) links the agents statically: an action then starts
# as fast as /bin/true (no dynamic loader), which is a quarter of a monitor.

AGENTS   ?= fs vip export nlm-locks nfs-server
PROFILE  ?= release
STATIC   ?= 1
PREFIX   ?= /usr
OCF_ROOT ?= $(PREFIX)/lib/ocf
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share
CARGO    ?= cargo
TARGET_DIR ?= target

PROFILE_DIR := $(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
ifeq ($(STATIC),1)
# With an explicit --target, RUSTFLAGS reach only the agents, not build
# scripts or proc-macros (which cannot be static).
TRIPLE    := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
BUILD_DIR := $(TARGET_DIR)/$(TRIPLE)/$(PROFILE_DIR)
CARGO_ENV := RUSTFLAGS="-C target-feature=+crt-static"
CARGO_TARGET := --target $(TRIPLE)
else
BUILD_DIR := $(TARGET_DIR)/$(PROFILE_DIR)
endif

.PHONY: build install metadata bindir deb

build:
	$(CARGO_ENV) $(CARGO) build --profile $(PROFILE) $(CARGO_TARGET) $(addprefix --bin ,$(AGENTS))

bindir:
	@echo $(BUILD_DIR)

install: build
	install -d $(DESTDIR)$(OCF_ROOT)/resource.d/handoff $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DATADIR)/handoff/metadata
	for a in $(AGENTS); do \
		install -m 0755 $(BUILD_DIR)/$$a $(DESTDIR)$(OCF_ROOT)/resource.d/handoff/$$a && \
		ln -sfr $(DESTDIR)$(OCF_ROOT)/resource.d/handoff/$$a $(DESTDIR)$(SBINDIR)/handoff-$$a && \
		$(BUILD_DIR)/$$a --man > $(DESTDIR)$(MANDIR)/man7/ocf_handoff_$$a.7 && \
		$(BUILD_DIR)/$$a meta-data > $(DESTDIR)$(DATADIR)/handoff/metadata/$$a.xml || exit 1; \
	done

metadata: build
	for a in $(AGENTS); do $(BUILD_DIR)/$$a meta-data > ocf-metadata/$$a.xml || exit 1; done

# debian/rules does the packaging; it calls back into build and install.
deb:
	debian/rules binary MAKEFLAGS_TOP="$(foreach v,CARGO PROFILE STATIC TARGET_DIR,$(v)=$($(v)))"
