package delta_test

// Tests against a real cluster with delta installed: DELTA_TEST_DSN names
// its database (test/t/110_go_client.pl sets it); without it they skip.
// Each test uses kinds and a namespace of its own.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	delta "github.com/delta-pg/delta/clients/go"
	"github.com/jackc/pgx/v4/pgxpool"
)

// testObject is an object whose kind comes from its type parameter, so
// that each test has a Go type (and a kind) of its own.
type testObject[K kindName] struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

type kindName interface{ name() string }

func (o testObject[K]) ID() string { return o.Key }

func (o testObject[K]) Kind() string {
	var k K
	return k.name()
}

// recorder is a controller that counts its calls per object and does what
// work says for each call (nil: succeed)
type recorder[T delta.Object] struct {
	mu    sync.Mutex
	calls map[string]int
	work  func(ctx context.Context, r *delta.Resource[T], call int) error
}

func newRecorder[T delta.Object](work func(ctx context.Context, r *delta.Resource[T], call int) error) *recorder[T] {
	return &recorder[T]{calls: make(map[string]int), work: work}
}

func (c *recorder[T]) Work(ctx context.Context, r *delta.Resource[T]) error {
	c.mu.Lock()
	c.calls[r.ObjectID]++
	n := c.calls[r.ObjectID]
	c.mu.Unlock()
	if c.work == nil {
		return nil
	}
	return c.work(ctx, r, n)
}

func (c *recorder[T]) callsOf(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func testPool(t *testing.T, appName string) *pgxpool.Pool {
	t.Helper()
	dsn := os.Getenv("DELTA_TEST_DSN")
	if dsn == "" {
		t.Skip("DELTA_TEST_DSN is not set")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	pool, err := pgxpool.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...interface{}) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// externalNamespace makes namespace ns anew, without server workers, and
// unregisters the kind of the same name (the tests can run again on the
// same database)
func externalNamespace(t *testing.T, pool *pgxpool.Pool, ns string) {
	exec(t, pool, `SELECT delta.unregister_controller(kind) FROM delta.controller WHERE kind = $1`, ns)
	exec(t, pool, `SELECT delta.drop_namespace(name, force => true) FROM delta.namespace WHERE name = $1`, ns)
	exec(t, pool, `SELECT delta.create_namespace($1, max_workers => 0)`, ns)
}

// startClient starts a client working namespace ns with ctrl; Stop runs at
// the end of the test unless the test stopped it
func startClient[T delta.Object](t *testing.T, pool *pgxpool.Pool, ns string, ctrl delta.Controller[T],
	edit func(*delta.Config)) *delta.Client {
	t.Helper()
	controllers := delta.NewControllers()
	delta.AddController[T](controllers, ctrl)
	cfg := &delta.Config{
		Namespaces:  map[string]delta.NamespaceConfig{ns: {MaxWorkers: 4}},
		Controllers: controllers,
		ClaimWait:   time.Second,
	}
	if edit != nil {
		edit(cfg)
	}
	client, err := delta.NewClient(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	return client
}

// waitFor polls query (returning a boolean) until it is true; the limit
// only keeps a broken test from hanging
func waitFor(t *testing.T, pool *pgxpool.Pool, what, query string, args ...interface{}) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		if err := pool.QueryRow(context.Background(), query, args...).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func informOne(t *testing.T, client *delta.Client, object delta.Object, ns string) {
	t.Helper()
	if _, err := client.Inform(context.Background(), object, &delta.InformOpts{Namespace: ns}); err != nil {
		t.Fatal(err)
	}
}

type resourceState struct {
	state   string
	attempt int
	errors  string
}

func stateOf(t *testing.T, pool *pgxpool.Pool, kind, id string) resourceState {
	t.Helper()
	var r resourceState
	err := pool.QueryRow(context.Background(),
		`SELECT state::text, attempt, errors::text FROM delta.resource WHERE kind = $1 AND object_id = $2`,
		kind, id).Scan(&r.state, &r.attempt, &r.errors)
	if err != nil {
		t.Fatalf("resource %s/%s: %v", kind, id, err)
	}
	return r
}

func waitState(t *testing.T, pool *pgxpool.Pool, kind, id, state string) resourceState {
	t.Helper()
	waitFor(t, pool, fmt.Sprintf("%s/%s to be %s", kind, id, state),
		`SELECT coalesce((SELECT state::text = $3 FROM delta.resource WHERE kind = $1 AND object_id = $2), false)`,
		kind, id, state)
	return stateOf(t, pool, kind, id)
}

type kindOnce struct{}

func (kindOnce) name() string { return "go_once" }

func TestWorkOncePerInform(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_once")
	ctrl := newRecorder[testObject[kindOnce]](nil)
	client := startClient[testObject[kindOnce]](t, pool, "go_once", ctrl, nil)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		res, err := client.Inform(ctx, testObject[kindOnce]{Key: fmt.Sprint("o", i), N: i},
			&delta.InformOpts{Namespace: "go_once"})
		if err != nil {
			t.Fatal(err)
		}
		if res.AlreadyExists || res.Resource.State != delta.ResourceStateScheduled {
			t.Fatalf("inform returned %+v", res)
		}
	}
	waitFor(t, pool, "20 synced", `SELECT count(*) FILTER (WHERE state = 'synced') = 20 FROM delta.resource WHERE kind = 'go_once'`)
	// informed again: one more run
	if _, err := client.Inform(ctx, testObject[kindOnce]{Key: "o3", N: 33}, &delta.InformOpts{Namespace: "go_once"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pool, "o3 synced again", `SELECT state = 'synced' FROM delta.resource WHERE kind = 'go_once' AND object_id = 'o3'`)
	if err := client.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		id, want := fmt.Sprint("o", i), 1
		if id == "o3" {
			want = 2
		}
		if got := ctrl.callsOf(id); got != want {
			t.Errorf("Work called %d times for %s, want %d", got, id, want)
		}
	}
}

type kindRetry struct{}

func (kindRetry) name() string { return "go_retry" }

func TestErrorRetriedThenSynced(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_retry")
	// registered beforehand (Start leaves it alone) with a short back-off
	exec(t, pool, `SELECT delta.register_controller('go_retry', work => NULL,
		backoff_base => '10 milliseconds', backoff_max => '10 milliseconds')`)
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindRetry]], call int) error {
		if call == 1 {
			return errors.New("boom")
		}
		return nil
	})
	client := startClient[testObject[kindRetry]](t, pool, "go_retry", ctrl, nil)
	informOne(t, client, testObject[kindRetry]{Key: "r1"}, "go_retry")
	r := waitState(t, pool, "go_retry", "r1", "synced")
	if r.attempt != 2 || !strings.Contains(r.errors, `"boom"`) || ctrl.callsOf("r1") != 2 {
		t.Fatalf("after a failure and a retry: %+v, %d calls", r, ctrl.callsOf("r1"))
	}
}

type kindPanic struct{}

func (kindPanic) name() string { return "go_panic" }

func TestPanicFailsTheRun(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_panic")
	exec(t, pool, `SELECT delta.register_controller('go_panic', work => NULL, max_attempts => 1)`)
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindPanic]], call int) error {
		panic("kaboom")
	})
	client := startClient[testObject[kindPanic]](t, pool, "go_panic", ctrl, nil)
	informOne(t, client, testObject[kindPanic]{Key: "p1"}, "go_panic")
	r := waitState(t, pool, "go_panic", "p1", "degraded")
	if !strings.Contains(r.errors, "kaboom") {
		t.Fatalf("a panicking run: %+v", r)
	}
}

type kindDelete struct{}

func (kindDelete) name() string { return "go_delete" }

func TestResourceDelete(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_delete")
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindDelete]], call int) error {
		return delta.ResourceDelete(errors.New("gone upstream"))
	})
	client := startClient[testObject[kindDelete]](t, pool, "go_delete", ctrl, nil)
	informOne(t, client, testObject[kindDelete]{Key: "d1"}, "go_delete")
	r := waitState(t, pool, "go_delete", "d1", "deleted")
	if ctrl.callsOf("d1") != 1 {
		t.Fatalf("deleted after %d calls: %+v", ctrl.callsOf("d1"), r)
	}
}

type kindSnooze struct{}

func (kindSnooze) name() string { return "go_snooze" }

func TestSnoozeGivesTheAttemptBack(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_snooze")
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindSnooze]], call int) error {
		if call == 1 {
			return delta.Snooze(20 * time.Millisecond)
		}
		return nil
	})
	client := startClient[testObject[kindSnooze]](t, pool, "go_snooze", ctrl, nil)
	informOne(t, client, testObject[kindSnooze]{Key: "s1"}, "go_snooze")
	r := waitState(t, pool, "go_snooze", "s1", "synced")
	if r.attempt != 1 || ctrl.callsOf("s1") != 2 {
		t.Fatalf("snoozed once, then synced: %+v after %d calls", r, ctrl.callsOf("s1"))
	}
}

type kindStop struct{}

func (kindStop) name() string { return "go_stop" }

func TestStopFinishesRunsInFlight(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_stop")
	started, release := make(chan struct{}), make(chan struct{})
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindStop]], call int) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	client := startClient[testObject[kindStop]](t, pool, "go_stop", ctrl, nil)
	informOne(t, client, testObject[kindStop]{Key: "st1"}, "go_stop")
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- client.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned while a run was in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	// the outcome was recorded before Stop returned
	if r := stateOf(t, pool, "go_stop", "st1"); r.state != "synced" || r.attempt != 1 {
		t.Fatalf("after Stop: %+v", r)
	}
}

type kindTx struct{}

func (kindTx) name() string { return "go_tx" }

func TestInformTxRolledBackInformsNothing(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_tx")
	ctrl := newRecorder[testObject[kindTx]](nil)
	client := startClient[testObject[kindTx]](t, pool, "go_tx", ctrl, nil)
	ctx := context.Background()
	informIn := func(key string, commit bool) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.InformTx(ctx, tx, testObject[kindTx]{Key: key}, &delta.InformOpts{Namespace: "go_tx"}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	informIn("rolled-back", false)
	informIn("committed", true)
	waitState(t, pool, "go_tx", "committed", "synced")
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM delta.resource WHERE kind = 'go_tx'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 || ctrl.callsOf("rolled-back") != 0 || ctrl.callsOf("committed") != 1 {
		t.Fatalf("%d resources, %d runs of the rolled-back inform", n, ctrl.callsOf("rolled-back"))
	}
}

type kindLease struct{}

func (kindLease) name() string { return "go_lease" }

func TestLeaseExtendedWhileWorkRuns(t *testing.T) {
	pool := testPool(t, "")
	externalNamespace(t, pool, "go_lease")
	var sawLease atomic.Bool
	ctrl := newRecorder(func(ctx context.Context, r *delta.Resource[testObject[kindLease]], call int) error {
		sawLease.Store(r.LeaseUntil != nil)
		// longer than the lease: only the heartbeat keeps the claim
		select {
		case <-time.After(2500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	client := startClient[testObject[kindLease]](t, pool, "go_lease", ctrl, func(c *delta.Config) {
		c.ClaimLease = time.Second
	})
	informOne(t, client, testObject[kindLease]{Key: "l1"}, "go_lease")
	r := waitState(t, pool, "go_lease", "l1", "synced")
	if r.attempt != 1 || ctrl.callsOf("l1") != 1 || !sawLease.Load() {
		t.Fatalf("a run longer than its lease: %+v after %d calls (lease seen: %v)", r, ctrl.callsOf("l1"), sawLease.Load())
	}
}

type kindSub struct{}

func (kindSub) name() string { return "go_sub" }

func TestSubscribeLosesNothingAcrossAReconnect(t *testing.T) {
	pool := testPool(t, "")
	subPool := testPool(t, "delta_go_test_subscriber")
	externalNamespace(t, pool, "go_sub")
	ctx := context.Background()
	subscriber, err := delta.NewClient(subPool, &delta.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subscriber.SubscribeConfig(ctx, &delta.SubscribeConfig{
		Categories: []delta.EventCategory{delta.EventCategoryObjectSynced}, Kinds: []string{"go_sub"},
		PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctrl := newRecorder[testObject[kindSub]](nil)
	client := startClient[testObject[kindSub]](t, pool, "go_sub", ctrl, nil)
	seen := map[string]int{}
	receive := func(total int) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for len(seen) < total {
			select {
			case e, ok := <-sub.Events:
				if !ok {
					t.Fatal("the events channel closed")
				}
				if e.Category != delta.EventCategoryObjectSynced || e.Kind != "go_sub" {
					t.Fatalf("unexpected event %+v", e)
				}
				seen[e.ObjectID]++
			case <-timeout:
				t.Fatalf("timed out with %d of %d events", len(seen), total)
			}
		}
	}
	inform := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := client.Inform(ctx, testObject[kindSub]{Key: fmt.Sprint("e", i)},
				&delta.InformOpts{Namespace: "go_sub"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	inform(0, 10)
	receive(5)
	var killed int
	if err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'delta_go_test_subscriber'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no connection of the subscriber to terminate")
	}
	inform(10, 20)
	receive(20)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("object_synced of %s received %d times", id, n)
		}
	}
	if len(seen) != 20 {
		t.Errorf("received events of %d objects, want 20", len(seen))
	}
}
