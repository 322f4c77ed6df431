package delta

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v4/pgxpool"
)

// claim is one claimed resource while its run is in flight.
type claim struct {
	token      [16]byte
	leaseUntil *time.Time
	row        ResourceRow
	cancel     context.CancelFunc // cancels the run (its claim was lost)
}

// maxClaim is the most resources one delta.claim may ask for
const maxClaim = 1000

// claimer claims the due resources of one namespace on a connection of its
// own, for as many runs as it has free slots, and starts a run for each.
// The connection is the holder of session-held claims: it stays open until
// every run it claimed has ended (Client.shutdown closes it).
type claimer struct {
	client    *Client
	namespace string
	kinds     []string

	slotsMu sync.Mutex
	free    int
	freed   chan struct{} // a slot was given back

	connMu   sync.Mutex
	conn     *pgxpool.Conn
	claiming bool // a delta.claim is in progress on conn
}

func newClaimer(c *Client, namespace string, maxWorkers int, kinds []string) *claimer {
	return &claimer{client: c, namespace: namespace, kinds: kinds, free: maxWorkers,
		freed: make(chan struct{}, 1)}
}

// loop claims until the client stops
func (cl *claimer) loop() {
	defer cl.client.claimersDone.Done()
	failures := 0
	for {
		n := cl.takeSlots()
		if n == 0 {
			return
		}
		if n > maxClaim {
			cl.giveSlots(n - maxClaim)
			n = maxClaim
		}
		claims, err := cl.claim(n)
		cl.giveSlots(n - len(claims))
		for _, c := range claims {
			cl.start(c)
		}
		if cl.client.isStopping() {
			return
		}
		if err != nil {
			failures++
			if failures == 1 || failures%60 == 0 {
				cl.client.logger.Printf("claiming in namespace %q failed (%d in a row, retrying): %v",
					cl.namespace, failures, err)
			}
			time.Sleep(time.Duration(min(failures, 10)) * 100 * time.Millisecond)
			continue
		}
		failures = 0
	}
}

// takeSlots waits for a free slot and takes every free one; 0 when stopping
func (cl *claimer) takeSlots() int {
	for {
		if cl.client.isStopping() {
			return 0
		}
		cl.slotsMu.Lock()
		n := cl.free
		cl.free = 0
		cl.slotsMu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-cl.freed:
		case <-time.After(100 * time.Millisecond): // to notice a stop
		}
	}
}

func (cl *claimer) giveSlots(n int) {
	if n == 0 {
		return
	}
	cl.slotsMu.Lock()
	cl.free += n
	cl.slotsMu.Unlock()
	select {
	case cl.freed <- struct{}{}:
	default:
	}
}

// claim runs one delta.claim for at most max resources on the claimer's
// connection (acquired first if it has none)
func (cl *claimer) claim(max int) ([]*claim, error) {
	c := cl.client
	ctx := context.Background()
	cl.connMu.Lock()
	if cl.conn == nil {
		conn, err := c.pool.Acquire(ctx)
		if err != nil {
			cl.connMu.Unlock()
			return nil, err
		}
		cl.conn = conn
	}
	if c.isStopping() {
		cl.connMu.Unlock()
		return nil, nil
	}
	conn := cl.conn
	cl.claiming = true
	cl.connMu.Unlock()
	defer func() {
		cl.connMu.Lock()
		cl.claiming = false
		cl.connMu.Unlock()
	}()

	var lease interface{}
	if c.config.ClaimLease > 0 {
		lease = interval(c.config.ClaimLease)
	}
	rows, err := conn.Query(ctx, sqlClaim, cl.namespace, max, cl.kinds, interval(c.config.ClaimWait), lease)
	if err != nil {
		return nil, cl.connError(err)
	}
	defer rows.Close()
	var claims []*claim
	for rows.Next() {
		cm := &claim{}
		row, err := scanResource(rows, &cm.token, &cm.leaseUntil)
		if err != nil {
			// the claims already scanned are ended by the rescue or the lease
			return nil, err
		}
		cm.row = *row
		claims = append(claims, cm)
	}
	if err := rows.Err(); err != nil {
		if c.isStopping() && sqlState(err) == "57014" {
			return nil, nil // interrupted by Stop: nothing was claimed
		}
		return nil, cl.connError(err)
	}
	return claims, nil
}

// connError drops a connection that broke: its session-held claims are
// rescued by the server, and the next claim takes another connection
func (cl *claimer) connError(err error) error {
	cl.connMu.Lock()
	defer cl.connMu.Unlock()
	if cl.conn != nil && cl.conn.Conn().IsClosed() {
		cl.conn.Release()
		cl.conn = nil
	}
	return err
}

// interrupt cancels a waiting delta.claim (a cancel request: cancelling its
// context would close the connection, and with it the session's claims)
func (cl *claimer) interrupt() {
	cl.connMu.Lock()
	defer cl.connMu.Unlock()
	if cl.claiming && cl.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = cl.conn.Conn().PgConn().CancelRequest(ctx)
	}
}

// closeConn closes the claiming connection rather than giving it back to
// the pool: a late cancel request must not reach another statement
func (cl *claimer) closeConn() {
	cl.connMu.Lock()
	defer cl.connMu.Unlock()
	if cl.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cl.conn.Conn().Close(ctx)
		cl.conn.Release()
		cl.conn = nil
	}
}

// start runs Work for a claimed resource in a goroutine of its own
func (cl *claimer) start(cm *claim) {
	c := cl.client
	info := c.config.Controllers.byKind[cm.row.Kind]
	ctx, cancel := context.WithCancel(c.workCtx)
	cm.cancel = cancel
	if c.heartbeat != nil {
		c.heartbeat.add(cm)
	}
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		var err error
		if info == nil {
			err = fmt.Errorf("no controller for kind %q in this client", cm.row.Kind)
		} else {
			err = runWork(ctx, info, cm, c.config.ResourceWorkTimeout)
		}
		cancel()
		c.outcomes <- outcome{claim: cm, err: err}
		cl.giveSlots(1)
	}()
}

// runWork calls Work, turning a panic into a PanicError
func runWork(ctx context.Context, info *controllerInfo, cm *claim, timeout time.Duration) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return info.work(ctx, cm, timeout)
}

func (c *Client) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
