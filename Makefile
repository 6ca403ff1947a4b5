# handoff: build and install the OCF agents.
#
#   make install                 build (release) and install under /usr
#   make install DESTDIR=/pkg    stage into a package root
#   make metadata                refresh ocf-metadata/ from the binaries
#
# Installs, per agent NAME:
#   $(OCF_ROOT)/resource.d/handoff/NAME        the agent (ocf:handoff:NAME)
#   $(SBINDIR)/handoff-NAME                     the same binary, for CLI use
#   $(MANDIR)/man7/ocf_handoff_NAME.7           its man page
#   $(DATADIR)/handoff/metadata/NAME.xml        its metadata XML

AGENTS   ?= fs
PROFILE  ?= release
PREFIX   ?= /usr
OCF_ROOT ?= $(PREFIX)/lib/ocf
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share
CARGO    ?= cargo
TARGET_DIR ?= target
BUILD_DIR := $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))

.PHONY: build install metadata

build:
	$(CARGO) build --profile $(PROFILE) $(addprefix --bin ,$(AGENTS))

install: build
	install -d $(DESTDIR)$(OCF_ROOT)/resource.d/handoff $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DATADIR)/handoff/metadata
	for a in $(AGENTS); do \
		install -m 0755 $(BUILD_DIR)/$$a $(DESTDIR)$(OCF_ROOT)/resource.d/handoff/$$a && \
		ln -sf $(OCF_ROOT)/resource.d/handoff/$$a $(DESTDIR)$(SBINDIR)/handoff-$$a && \
		$(BUILD_DIR)/$$a --man > $(DESTDIR)$(MANDIR)/man7/ocf_handoff_$$a.7 && \
		$(BUILD_DIR)/$$a meta-data > $(DESTDIR)$(DATADIR)/handoff/metadata/$$a.xml || exit 1; \
	done

metadata: build
	for a in $(AGENTS); do $(BUILD_DIR)/$$a meta-data > ocf-metadata/$$a.xml || exit 1; done
