package delta

import (
	"context"
	"errors"
	"sync"
	"time"
)

// outcome is how a run ended: err nil (synced), a ResourceDelete or Snooze
// error, or a failure.
type outcome struct {
	claim *claim
	err   error
}

// recordOutcomes writes the outcomes of the runs as they end: the synced
// ones in batches (one delta.complete(uuid[]) for all that ended while the
// previous batch was written), the others one by one.
func (c *Client) recordOutcomes() {
	defer close(c.recorderDone)
	for first := range c.outcomes {
		batch := []outcome{first}
	drain:
		for len(batch) < 1000 {
			select {
			case o, ok := <-c.outcomes:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		var synced [][16]byte
		for _, o := range batch {
			if o.err == nil {
				synced = append(synced, o.claim.token)
			} else {
				c.recordOne(o)
			}
		}
		c.completeMany(synced)
		if c.heartbeat != nil {
			for _, o := range batch {
				c.heartbeat.remove(o.claim)
			}
		}
	}
}

// completeMany marks the runs of tokens synced.  The batch is all or
// nothing: if one token is refused (55000: its claim was rescued, another
// run took over) each is completed alone and the refused ones are dropped.
func (c *Client) completeMany(tokens [][16]byte) {
	switch len(tokens) {
	case 0:
		return
	case 1:
		c.send("completing", tokens[0], sqlCompleteOne, tokens[0])
		return
	}
	err := c.retry(func(ctx context.Context) error {
		_, err := c.pool.Exec(ctx, sqlCompleteMany, tokens)
		return err
	})
	if err == nil {
		return
	}
	if sqlState(err) != "55000" {
		c.logger.Printf("completing %d runs failed, they stay pending until their claims are rescued: %v",
			len(tokens), err)
		return
	}
	for _, t := range tokens {
		c.send("completing", t, sqlCompleteOne, t)
	}
}

// recordOne ends a run that did not end synced
func (c *Client) recordOne(o outcome) {
	t := o.claim.token
	if d, ok := asResourceDelete(o.err); ok {
		var reason interface{}
		if d.err != nil {
			reason = d.err.Error()
		}
		c.send("deleting", t, sqlDelete, t, reason)
		return
	}
	if s, ok := asSnooze(o.err); ok {
		c.send("snoozing", t, sqlSnooze, t, interval(s.delay))
		return
	}
	var detail interface{}
	var p *PanicError
	if errors.As(o.err, &p) {
		detail = string(p.Stack)
	}
	c.send("failing", t, sqlFail, t, o.err.Error(), detail)
}

// send runs one statement that ends a run; a refused token (55000) is
// logged and dropped
func (c *Client) send(what string, token [16]byte, sql string, args ...interface{}) {
	err := c.retry(func(ctx context.Context) error {
		_, err := c.pool.Exec(ctx, sql, args...)
		return err
	})
	switch {
	case err == nil:
	case sqlState(err) == "55000":
		c.logger.Printf("%s the run of claim %x: dropped, the claim is no longer held (another run took over): %v",
			what, token, err)
	default:
		c.logger.Printf("%s the run of claim %x failed, it stays pending until its claim is rescued: %v",
			what, token, err)
	}
}

// retry runs f until it succeeds or fails with an error of the server,
// at most 5 times, backing off between tries that could not reach it
func (c *Client) retry(f func(ctx context.Context) error) error {
	var err error
	for try := 0; try < 5; try++ {
		if try > 0 {
			time.Sleep(time.Duration(100<<try) * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = f(ctx)
		cancel()
		if err == nil || sqlState(err) != "" {
			return err
		}
	}
	return err
}

// heartbeat extends the leases of the claims in flight every third of
// the lease; a claim whose lease is lost has its run cancelled.
type heartbeat struct {
	client *Client
	mu     sync.Mutex
	claims map[*claim]struct{}
	done   chan struct{}
	exited chan struct{}
}

func newHeartbeat(c *Client) *heartbeat {
	return &heartbeat{client: c, claims: make(map[*claim]struct{}),
		done: make(chan struct{}), exited: make(chan struct{})}
}

func (h *heartbeat) add(cm *claim) {
	h.mu.Lock()
	h.claims[cm] = struct{}{}
	h.mu.Unlock()
}

func (h *heartbeat) remove(cm *claim) {
	h.mu.Lock()
	delete(h.claims, cm)
	h.mu.Unlock()
}

func (h *heartbeat) stop() {
	close(h.done)
	<-h.exited
}

func (h *heartbeat) loop() {
	defer close(h.exited)
	tick := time.NewTicker(h.client.config.ClaimLease / 3)
	defer tick.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		claims := make([]*claim, 0, len(h.claims))
		for cm := range h.claims {
			claims = append(claims, cm)
		}
		h.mu.Unlock()
		for _, cm := range claims {
			ctx, cancel := context.WithTimeout(context.Background(), h.client.config.ClaimLease/3)
			var until *time.Time
			err := h.client.pool.QueryRow(ctx, sqlHeartbeat, cm.token).Scan(&until)
			cancel()
			switch {
			case err == nil:
			case sqlState(err) == "55000":
				h.client.logger.Printf("the lease of claim %x (resource %d) was lost, its run is cancelled: %v",
					cm.token, cm.row.ID, err)
				cm.cancel()
				h.remove(cm)
			default:
				h.client.logger.Printf("extending the lease of claim %x (resource %d) failed: %v",
					cm.token, cm.row.ID, err)
			}
		}
	}
}
