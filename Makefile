# delta: PGXS build.  PG_CONFIG can be overridden: make PG_CONFIG=/path/to/pg_config
EXTENSION = delta
MODULE_big = delta
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is built from sql/src/, split by
# responsibility; the update from the last release re-runs the code parts
# (functions and views, as CREATE OR REPLACE) after its own schema steps in
# sql/updates/<from>--<to>/.  Released install scripts stay in sql/ as shipped.
DELTA_VERSION = $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" delta.control)
DELTA_PREVIOUS = 0.1.0
SQL_CODE = $(addprefix sql/src/,native.sql checks.sql namespace.sql inform.sql history.sql worker.sql external.sql \
	informer.sql maintenance.sql events.sql operations.sql views.sql comments.sql)
SQL_INSTALL = sql/src/trust.sql sql/src/schema.sql $(SQL_CODE) sql/src/bootstrap.sql sql/src/privileges.sql
# the trust check of sql/src/trust.sql comes first in both scripts
SQL_UPDATE_STEPS = sql/src/trust.sql $(sort $(wildcard sql/updates/$(DELTA_PREVIOUS)--$(DELTA_VERSION)/*.sql))
SQL_UPDATE_RERUN = $(SQL_CODE) sql/src/privileges.sql
DATA = $(filter-out sql/delta--$(DELTA_VERSION).sql sql/delta--$(DELTA_PREVIOUS)--$(DELTA_VERSION).sql,$(wildcard sql/delta--*.sql))
DATA_built = sql/delta--$(DELTA_VERSION).sql sql/delta--$(DELTA_PREVIOUS)--$(DELTA_VERSION).sql
PGFILEDESC = "delta - controllers run by background workers"

PG_CONFIG ?= pg_config
# the library calls the SQL of its own version only (background.c)
PG_CPPFLAGS += -DDELTA_VERSION='"$(DELTA_VERSION)"'
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

# pg_regress tests: every sql/*.sql but the install scripts
REGRESS = $(sort $(filter-out delta--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-config=$(CURDIR)/test/delta.conf --load-extension=delta

# isolation specs
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --temp-config=$(CURDIR)/test/delta.conf --inputdir=test --outputdir=test/output_iso --load-extension=delta

# TAP tests: make installcheck runs prove from the top directory (scripts/test
# runs each file from test/); every test starts its own clusters
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# DeltaTest.pm (Makefile.global sets PROVE_FLAGS empty: it is the user's,
# e.g. make installcheck PROVE_FLAGS=--verbose)
PG_PROVE_FLAGS += -I $(CURDIR)/test

# every object depends on every header: a changed struct must rebuild all
$(OBJS): $(wildcard src/*.h)

sql/delta--$(DELTA_VERSION).sql: sql/src/install_header.sql $(SQL_INSTALL) Makefile delta.control
	sed 's/@VERSION@/$(DELTA_VERSION)/g' sql/src/install_header.sql > $@.tmp
	for f in $(SQL_INSTALL); do printf '\n-- ==== %s ====\n\n' "$$f"; cat "$$f"; done >> $@.tmp
	mv $@.tmp $@

sql/delta--$(DELTA_PREVIOUS)--$(DELTA_VERSION).sql: sql/src/update_header.sql $(SQL_UPDATE_STEPS) $(SQL_UPDATE_RERUN) Makefile delta.control
	sed 's/@FROM@/$(DELTA_PREVIOUS)/g; s/@VERSION@/$(DELTA_VERSION)/g' sql/src/update_header.sql > $@.tmp
	for f in $(SQL_UPDATE_STEPS); do printf '\n-- ==== %s ====\n\n' "$$f"; cat "$$f"; done >> $@.tmp
	for f in $(SQL_UPDATE_RERUN); do printf '\n-- ==== %s (re-run) ====\n\n' "$$f"; \
		sed -E 's/^CREATE (FUNCTION|VIEW) /CREATE OR REPLACE \1 /' "$$f"; done >> $@.tmp
	mv $@.tmp $@

all: $(DATA_built)

# A PGXN distribution: delta-<version>.zip, the committed tree under
# delta-<version>/ plus the built install and update scripts.
DIST = delta-$(DELTA_VERSION)
dist: $(DATA_built)
	rm -f $(DIST).zip
	git archive --format=zip -o $(DIST).zip --prefix=$(DIST)/sql/ \
		$(addprefix --add-file=,$(DATA_built)) --prefix=$(DIST)/ HEAD
.PHONY: dist
