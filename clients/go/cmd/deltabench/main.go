// Command deltabench is bench/run's external Go worker.
//
//	deltabench -dsn DSN drain  -namespace NS -kind K -n N [-clients 1] [-workers 100]
//	deltabench -dsn DSN pickup -namespace NS -kind K -n N
//
// drain: starts -clients clients (each with a pool and a claiming
// connection of its own, -workers runs in flight), whose Work does nothing,
// and returns once N resources of the namespace are synced; bench/run times
// the drain from the resources' attempted_at and synced_at.
//
// pickup: one client, one run at a time; Work notes when it starts (the
// machine's clock, as clock_timestamp() in the server), and once N runs
// have started the notes are copied into bench.pickup (object_id,
// started_at) for bench/run to compare with the informs' clock_timestamp().
// It prints "waiting" once the client is started.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	delta "github.com/delta-pg/delta/clients/go"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// object is any bench object; its kind is set by -kind
type object struct{}

var kind string

func (object) ID() string   { return "" }
func (object) Kind() string { return kind }

type noop struct{}

func (noop) Work(context.Context, *delta.Resource[object]) error { return nil }

type pickup struct {
	mu     sync.Mutex
	starts map[string]time.Time
	n      int
	done   chan struct{}
}

func (p *pickup) Work(ctx context.Context, r *delta.Resource[object]) error {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts[r.ObjectID] = now
	if len(p.starts) == p.n {
		close(p.done)
	}
	return nil
}

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL connection string")
	namespace := flag.String("namespace", "", "namespace to work")
	flag.StringVar(&kind, "kind", "", "kind to work")
	n := flag.Int("n", 0, "resources to wait for")
	clients := flag.Int("clients", 1, "drain: clients working the namespace")
	workers := flag.Int("workers", 100, "drain: runs in flight per client")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("deltabench: ")
	if flag.NArg() != 1 || *namespace == "" || kind == "" || *n < 1 {
		log.Fatal("usage: deltabench -dsn DSN -namespace NS -kind K -n N drain|pickup")
	}
	ctx := context.Background()
	switch flag.Arg(0) {
	case "drain":
		drain(ctx, *dsn, *namespace, *n, *clients, *workers)
	case "pickup":
		measurePickup(ctx, *dsn, *namespace, *n)
	default:
		log.Fatalf("unknown mode %q", flag.Arg(0))
	}
}

func start(ctx context.Context, dsn, namespace string, workers int, ctrl delta.Controller[object]) (*pgxpool.Pool, *delta.Client) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.ConnectConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	controllers := delta.NewControllers()
	delta.AddController[object](controllers, ctrl)
	client, err := delta.NewClient(pool, &delta.Config{
		Namespaces:  map[string]delta.NamespaceConfig{namespace: {MaxWorkers: workers}},
		Controllers: controllers,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	return pool, client
}

func drain(ctx context.Context, dsn, namespace string, n, clients, workers int) {
	var all []*delta.Client
	var pools []*pgxpool.Pool
	for i := 0; i < clients; i++ {
		pool, client := start(ctx, dsn, namespace, workers, noop{})
		pools, all = append(pools, pool), append(all, client)
	}
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer watch.Close(ctx)
	deadline := time.Now().Add(15 * time.Minute)
	for {
		var synced int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM delta.resource
			WHERE namespace = $1 AND kind = $2 AND state = 'synced'`, namespace, kind).Scan(&synced); err != nil {
			log.Fatal(err)
		}
		if synced >= n {
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("drain: %d of %d synced after 15 minutes", synced, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, client := range all {
		if err := client.Stop(ctx); err != nil {
			log.Fatal(err)
		}
		pools[i].Close()
	}
}

func measurePickup(ctx context.Context, dsn, namespace string, n int) {
	p := &pickup{starts: make(map[string]time.Time), n: n, done: make(chan struct{})}
	pool, client := start(ctx, dsn, namespace, 1, p)
	defer pool.Close()
	fmt.Println("waiting")
	select {
	case <-p.done:
	case <-time.After(15 * time.Minute):
		log.Fatal("pickup: timed out")
	}
	if err := client.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	rows := make([][]interface{}, 0, n)
	p.mu.Lock()
	for id, at := range p.starts {
		rows = append(rows, []interface{}{id, at})
	}
	p.mu.Unlock()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench", "pickup"}, []string{"object_id", "started_at"},
		pgx.CopyFromRows(rows)); err != nil {
		log.Fatal(err)
	}
	if len(rows) != n {
		fmt.Fprintf(os.Stderr, "deltabench: %d pickups, %d expected\n", len(rows), n)
		os.Exit(1)
	}
}
