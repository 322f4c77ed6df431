// Command example is the Go library's README example on delta: a User
// object, a UserController that works it, a few users informed, and the
// object_synced events printed as they come.
//
//	example -dsn 'host=/var/run/postgresql dbname=app' [-namespace users] [-users a@x,b@y] [-sleep 0s]
//
// It runs until SIGINT or SIGTERM, then stops cleanly (runs in flight
// finish).  Each run prints "working <email> attempt <n>" when it starts and
// "worked <email>" when Work returns; test/t/110_go_client.pl reads them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	delta "github.com/delta-pg/delta/clients/go"
	"github.com/jackc/pgx/v4/pgxpool"
)

// User is the object: the email identifies it on the external system.
type User struct {
	Email     string `json:"email"`
	Name      string `json:"name"`
	UpdatedAt int64  `json:"updated_at"`
}

func (u User) ID() string { return u.Email }

func (u User) Kind() string { return "user" }

// UserController works users.
type UserController struct {
	delta.WorkerDefaults[User]
	sleep time.Duration
}

// Work does the heavy lifting: here, print the user (and take -sleep).
func (c *UserController) Work(ctx context.Context, resource *delta.Resource[User]) error {
	fmt.Printf("working %s attempt %d\n", resource.Object.Email, resource.Attempt)
	select {
	case <-time.After(c.sleep):
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Printf("worked %s\n", resource.Object.Email)
	return nil
}

func main() {
	dsn := flag.String("dsn", os.Getenv("DATABASE_URL"), "PostgreSQL connection string")
	namespace := flag.String("namespace", delta.NamespaceDefault, "namespace to work")
	users := flag.String("users", "ann@example.com,bob@example.com,carol@example.com",
		"comma-separated emails of users to inform at start (empty: none)")
	sleep := flag.Duration("sleep", 0, "how long each run of Work takes")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	pool, err := pgxpool.Connect(ctx, *dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	controllers := delta.NewControllers()
	delta.AddController[User](controllers, &UserController{sleep: *sleep})
	client, err := delta.NewClient(pool, &delta.Config{
		Namespaces:  map[string]delta.NamespaceConfig{*namespace: {MaxWorkers: 10}},
		Controllers: controllers,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}

	events, unsubscribe, err := client.Subscribe(ctx, delta.EventCategoryObjectSynced)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for e := range events {
			fmt.Printf("event %s %s %s attempt %d\n", e.Category, e.Kind, e.ObjectID, e.Attempt)
		}
	}()

	for _, email := range strings.Split(*users, ",") {
		if email == "" {
			continue
		}
		user := User{Email: email, Name: strings.Split(email, "@")[0], UpdatedAt: time.Now().Unix()}
		if _, err := client.Inform(ctx, user, &delta.InformOpts{Namespace: *namespace}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("ready")

	<-ctx.Done()
	unsubscribe()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped")
}
