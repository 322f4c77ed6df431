# delta: PGXS build.  PG_CONFIG can be overridden: make PG_CONFIG=/path/to/pg_config
EXTENSION = delta
MODULE_big = delta
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA = $(wildcard sql/delta--*.sql)
PGFILEDESC = "delta - controllers run by background workers"

PG_CONFIG ?= pg_config
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

# pg_regress tests: every sql/*.sql but the install scripts
REGRESS = $(sort $(filter-out delta--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-config=$(CURDIR)/test/delta.conf --load-extension=delta

# isolation specs
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --temp-config=$(CURDIR)/test/delta.conf --inputdir=test --outputdir=test/output_iso --load-extension=delta

TAP_TESTS = 1
PROVE_FLAGS = -I $(CURDIR)/test

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on every header: a changed struct must rebuild all
$(OBJS): $(wildcard src/*.h)
