package delta

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v4/pgxpool"
)

// EventCategory is a category of delta.event.
type EventCategory string

// The categories of events.
const (
	// EventCategoryObjectSynced: a run ended synced.
	EventCategoryObjectSynced EventCategory = "object_synced"
	// EventCategoryObjectFailed: a run failed (State says failed or
	// degraded), or a dead run was rescued.
	EventCategoryObjectFailed EventCategory = "object_failed"
	// EventCategoryObjectDeleted: a run ended deleted.
	EventCategoryObjectDeleted EventCategory = "object_deleted"
)

// Event is a row of delta.event.
type Event struct {
	ID         int64
	Category   EventCategory
	ResourceID int64
	Kind       string
	ObjectID   string
	Namespace  string
	State      ResourceState
	Attempt    int
	// Error is the recorded error of a failure, as stored (JSON), or nil.
	Error     json.RawMessage
	CreatedAt time.Time
}

// SubscribeConfig configures a subscription.
type SubscribeConfig struct {
	// Categories to receive (at least one; an unknown one is an error of
	// the server, for forward compatibility).
	Categories []EventCategory
	// Kinds to receive; nil: every kind.
	Kinds []string
	// Name labels a new subscription (delta.subscription.name).
	Name string
	// ID resumes an existing subscription (its cursor is in the database)
	// instead of creating one; it is not unsubscribed at the end.
	ID int64
	// BatchSize is how many events one delta.events call reads [100].
	BatchSize int
	// PollInterval bounds the wait for a notification [1s]: delta.events
	// returns an event only once every older transaction has ended, which
	// no notification announces.
	PollInterval time.Duration
}

// Subscription delivers the events of a delta subscription.
type Subscription struct {
	// ID of the subscription in delta.subscription.
	ID int64
	// Events delivers the events in order; it is closed when the
	// subscription ends (Close, or the context of Subscribe ending).
	Events <-chan Event

	cancel context.CancelFunc
	done   chan struct{}
}

// Close ends the subscription, unsubscribing it unless it was resumed by
// ID, and waits until Events is closed.
func (s *Subscription) Close() {
	s.cancel()
	<-s.done
}

// Subscribe creates a subscription to categories (delta.subscribe) and
// delivers its events on the returned channel until ctx ends or the
// returned function is called (which unsubscribes it).
//
// Unlike the Go library's channel, nothing is dropped: the events are read
// through the subscription's cursor in the database (delta.events) and sent
// on the channel blocking, one batch at a time, woken by LISTEN
// delta_events; a lost connection is reconnected and reading goes on where
// the cursor stands.  A batch is read in a transaction; if its commit may
// not have happened (the connection broke), the events are delivered and
// skipped when they are read again.  Events read but not yet received from
// the channel are lost only if the process itself ends.
func (c *Client) Subscribe(ctx context.Context, categories ...EventCategory) (<-chan Event, func(), error) {
	s, err := c.SubscribeConfig(ctx, &SubscribeConfig{Categories: categories})
	if err != nil {
		return nil, nil, err
	}
	return s.Events, s.Close, nil
}

// SubscribeConfig is Subscribe with every option.
func (c *Client) SubscribeConfig(ctx context.Context, config *SubscribeConfig) (*Subscription, error) {
	cfg := *config
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	owned := cfg.ID == 0
	if owned {
		categories := make([]string, len(cfg.Categories))
		for i, cat := range cfg.Categories {
			categories[i] = string(cat)
		}
		var name interface{}
		if cfg.Name != "" {
			name = cfg.Name
		}
		if err := c.pool.QueryRow(ctx, sqlSubscribe, categories, cfg.Kinds, name).Scan(&cfg.ID); err != nil {
			return nil, err
		}
	}
	events := make(chan Event)
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{ID: cfg.ID, Events: events, cancel: cancel, done: make(chan struct{})}
	r := &eventReader{pool: c.pool, client: c, config: cfg, out: events}
	go func() {
		defer close(s.done)
		defer close(events)
		r.loop(ctx)
		if owned {
			uctx, ucancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ucancel()
			if _, err := c.pool.Exec(uctx, sqlUnsubscribe, cfg.ID); err != nil {
				c.logger.Printf("unsubscribing subscription %d failed: %v", cfg.ID, err)
			}
		}
	}()
	return s, nil
}

// eventReader reads one subscription's events into its channel
type eventReader struct {
	pool   *pgxpool.Pool
	client *Client
	config SubscribeConfig
	out    chan<- Event
	// ids of the last batch whose commit is in doubt: delivered already
	uncertain map[int64]bool
}

// loop reads on a listening connection of its own, reconnecting after
// errors, until ctx ends
func (r *eventReader) loop(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 || failures%60 == 0 {
			r.client.logger.Printf("reading the events of subscription %d failed (%d in a row, reconnecting): %v",
				r.config.ID, failures, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(min(failures, 10)) * 100 * time.Millisecond):
		}
	}
}

// session is one connection's life: LISTEN, then read, deliver, wait
func (r *eventReader) session(ctx context.Context) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// a listening connection is not given back to the pool
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Conn().Close(cctx)
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, sqlListen); err != nil {
		return err
	}
	for {
		batch, err := r.read(ctx, conn)
		for _, e := range batch {
			select {
			case r.out <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		if len(batch) == r.config.BatchSize {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, r.config.PollInterval)
		_, err = conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

// read reads the next batch in a transaction.  On an error of the commit
// the batch is returned with the error (it may have been committed) and
// remembered, so that a repeated read does not deliver it twice.
func (r *eventReader) read(ctx context.Context, conn *pgxpool.Conn) ([]Event, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rows, err := tx.Query(ctx, sqlEvents, r.config.ID, r.config.BatchSize)
	if err != nil {
		return nil, err
	}
	var batch []Event
	for rows.Next() {
		var e Event
		var category, state string
		if err := rows.Scan(&e.ID, &category, &e.ResourceID, &e.Kind, &e.ObjectID, &e.Namespace,
			&state, &e.Attempt, &e.Error, &e.CreatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		e.Category, e.State = EventCategory(category), ResourceState(state)
		if !r.uncertain[e.ID] {
			batch = append(batch, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	r.uncertain = nil
	if err := tx.Commit(ctx); err != nil {
		r.uncertain = make(map[int64]bool, len(batch))
		for _, e := range batch {
			r.uncertain[e.ID] = true
		}
		return batch, err
	}
	return batch, nil
}
