package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// Config configures a Client.
type Config struct {
	// Namespaces the client works, each with its number of concurrent runs.
	// May be empty for a client that only informs and subscribes.
	Namespaces map[string]NamespaceConfig

	// Controllers works the resources; the client claims only their kinds.
	Controllers *Controllers

	// ClaimWait is how long one delta.claim waits in the server for due
	// work before it is issued again [5s].  Keep it to a few seconds: the
	// waiting statement holds a snapshot.
	ClaimWait time.Duration

	// ClaimLease, when positive, claims with delta.claim(lease => ClaimLease):
	// the claims are held by a lease that a heartbeat (every third of it)
	// extends while Work runs, instead of by the claiming session.  Use it
	// when the pool's connections may change backends between statements.
	ClaimLease time.Duration

	// ResourceWorkTimeout is the time limit of a run of Work (its context
	// is cancelled) [1 minute]; negative: none.  A controller's Timeout
	// method overrides it.
	ResourceWorkTimeout time.Duration

	// Logger gets the errors the client handles itself (a claim that failed
	// and is retried, a completion refused because another run took over).
	// Defaults to a logger on standard error.
	Logger *log.Logger
}

// NamespaceConfig configures the work of one namespace.
type NamespaceConfig struct {
	// MaxWorkers is how many runs of Work the client has in flight at once
	// in this namespace; it never claims more than it can start at once.
	MaxWorkers int
}

// Client informs resources and, once started, works them.
type Client struct {
	pool   *pgxpool.Pool
	config Config
	logger *log.Logger

	mu       sync.Mutex
	started  bool
	stopping bool
	claimers []*claimer // one per namespace

	claimersDone sync.WaitGroup
	runs         sync.WaitGroup
	workCtx      context.Context
	cancelWork   context.CancelFunc
	outcomes     chan outcome
	recorderDone chan struct{}
	heartbeat    *heartbeat
	stopped      chan struct{}
	stopErr      error
}

// NewClient returns a client working through pool.  Nothing is sent to the
// server before Start or another method is called.
func NewClient(pool *pgxpool.Pool, config *Config) (*Client, error) {
	if pool == nil {
		return nil, errors.New("delta: nil pool")
	}
	if config == nil {
		return nil, errors.New("delta: nil config")
	}
	c := &Client{pool: pool, config: *config}
	if c.config.ClaimWait == 0 {
		c.config.ClaimWait = 5 * time.Second
	}
	if c.config.ResourceWorkTimeout == 0 {
		c.config.ResourceWorkTimeout = time.Minute
	}
	c.logger = c.config.Logger
	if c.logger == nil {
		c.logger = log.New(os.Stderr, "delta: ", log.LstdFlags)
	}
	if c.config.ClaimWait < 0 {
		return nil, errors.New("delta: ClaimWait must not be negative")
	}
	if c.config.ClaimLease != 0 && (c.config.ClaimLease < time.Second || c.config.ClaimLease > 24*time.Hour) {
		return nil, errors.New("delta: ClaimLease must be 0 (claims held by the session) or between 1 second and 1 day")
	}
	for name, ns := range c.config.Namespaces {
		if name == "" {
			return nil, errors.New("delta: empty namespace name")
		}
		if ns.MaxWorkers < 1 {
			return nil, fmt.Errorf("delta: namespace %q: MaxWorkers must be at least 1", name)
		}
	}
	if len(c.config.Namespaces) > 0 && (c.config.Controllers == nil || len(c.config.Controllers.byKind) == 0) {
		return nil, errors.New("delta: Namespaces are given but no controller is registered")
	}
	return c, nil
}

// Start registers what is missing in the database — each controller's kind
// as an external one (delta.register_controller(kind, work => NULL)), each
// namespace with max_workers => 0 (served by external workers only) — and
// leaves existing registrations alone; then it starts claiming.  The runs
// get contexts that are not derived from ctx: Stop ends them.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("delta: client already started")
	}
	if len(c.config.Namespaces) == 0 {
		return errors.New("delta: no namespaces configured to work")
	}
	// each namespace keeps a claiming connection; outcomes need one more
	if max := int(c.pool.Config().MaxConns); max < len(c.config.Namespaces)+1 {
		return fmt.Errorf("delta: the pool allows %d connections; %d namespaces need at least %d "+
			"(one each to claim, one to record outcomes; one more per subscription)",
			max, len(c.config.Namespaces), len(c.config.Namespaces)+1)
	}
	for _, kind := range c.config.Controllers.kinds() {
		if err := c.ensure(ctx, sqlKindRegistered, sqlRegisterExternal, kind); err != nil {
			return fmt.Errorf("delta: registering kind %q: %w", kind, err)
		}
	}
	for name := range c.config.Namespaces {
		if err := c.ensure(ctx, sqlNamespaceExists, sqlCreateNamespace, name); err != nil {
			return fmt.Errorf("delta: creating namespace %q: %w", name, err)
		}
	}
	c.started = true
	c.workCtx, c.cancelWork = context.WithCancel(context.Background())
	c.outcomes = make(chan outcome, 1024)
	c.recorderDone = make(chan struct{})
	c.stopped = make(chan struct{})
	go c.recordOutcomes()
	if c.config.ClaimLease > 0 {
		c.heartbeat = newHeartbeat(c)
		go c.heartbeat.loop()
	}
	kinds := c.config.Controllers.kinds()
	for name, ns := range c.config.Namespaces {
		cl := newClaimer(c, name, ns.MaxWorkers, kinds)
		c.claimers = append(c.claimers, cl)
		c.claimersDone.Add(1)
		go cl.loop()
	}
	return nil
}

// ensure runs create (with name) unless exists (with name) says it is
// there; a create that finds it made meanwhile (42710) is success.  A
// role that may not read the catalog table goes straight to create.
func (c *Client) ensure(ctx context.Context, exists, create, name string) error {
	var found bool
	if err := c.pool.QueryRow(ctx, exists, name).Scan(&found); err == nil && found {
		return nil
	}
	_, err := c.pool.Exec(ctx, create, name)
	if sqlState(err) == "42710" {
		return nil
	}
	return err
}

// Stop stops claiming, waits for the runs in flight to end and their
// outcomes to be recorded, then closes the claiming connections.  Nothing
// claimed is left unstarted (the client claims only what it can start at
// once).  If ctx ends first, the runs' contexts are cancelled and Stop
// returns ctx's error; the outcomes are still recorded in the background.
func (c *Client) Stop(ctx context.Context) error {
	c.mu.Lock()
	if !c.started {
		c.mu.Unlock()
		return errors.New("delta: client not started")
	}
	first := !c.stopping
	c.stopping = true
	claimers := c.claimers
	c.mu.Unlock()
	if first {
		go c.shutdown(claimers)
	}
	select {
	case <-c.stopped:
		return c.stopErr
	case <-ctx.Done():
		c.cancelWork()
		return ctx.Err()
	}
}

// shutdown is Stop's work: interrupt the waiting claims until every
// claimer has returned, wait for the runs, flush the outcomes, close the
// claiming connections.
func (c *Client) shutdown(claimers []*claimer) {
	done := make(chan struct{})
	go func() {
		c.claimersDone.Wait()
		close(done)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for interrupted := false; !interrupted; {
		for _, cl := range claimers {
			cl.interrupt()
		}
		select {
		case <-done:
			interrupted = true
		case <-tick.C:
		}
	}
	c.runs.Wait()
	close(c.outcomes)
	<-c.recorderDone
	if c.heartbeat != nil {
		c.heartbeat.stop()
	}
	for _, cl := range claimers {
		cl.closeConn()
	}
	c.cancelWork()
	close(c.stopped)
}

// InformOpts are the optional arguments of delta.inform.
type InformOpts struct {
	// Namespace [NamespaceDefault]
	Namespace string
	// Metadata is a JSON object stored with the resource [{}].
	Metadata json.RawMessage
	// MaxAttempts; 0 takes the controller's.
	MaxAttempts int
	// Tags, each matching ^[\w][\w\-]+[\w]$.
	Tags []string
	// ExternalCreatedAt; zero takes ObjectWithCreatedAt's, if implemented.
	ExternalCreatedAt time.Time
}

// InformResult is delta.inform's answer.
type InformResult struct {
	Resource *ResourceRow
	// AlreadyExists is true when the resource existed and was scheduled again.
	AlreadyExists bool
}

// Inform records object (delta.inform) in a transaction of its own.  opts
// may be nil.
func (c *Client) Inform(ctx context.Context, object Object, opts *InformOpts) (*InformResult, error) {
	return inform(ctx, c.pool, object, opts)
}

// InformTx records object in the caller's transaction: it is worked only if
// tx commits.
func (c *Client) InformTx(ctx context.Context, tx pgx.Tx, object Object, opts *InformOpts) (*InformResult, error) {
	return inform(ctx, tx, object, opts)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...interface{}) pgx.Row
}

func inform(ctx context.Context, q queryRower, object Object, opts *InformOpts) (*InformResult, error) {
	if object == nil {
		return nil, errors.New("delta: nil object")
	}
	if opts == nil {
		opts = &InformOpts{}
	}
	encoded, err := json.Marshal(object)
	if err != nil {
		return nil, fmt.Errorf("delta: encoding the object: %w", err)
	}
	namespace := opts.Namespace
	if namespace == "" {
		namespace = NamespaceDefault
	}
	metadata := opts.Metadata
	if metadata == nil {
		metadata = json.RawMessage(`{}`)
	}
	tags := opts.Tags
	if tags == nil {
		tags = []string{}
	}
	var maxAttempts *int
	if opts.MaxAttempts != 0 {
		maxAttempts = &opts.MaxAttempts
	}
	var createdAt *time.Time
	if !opts.ExternalCreatedAt.IsZero() {
		createdAt = &opts.ExternalCreatedAt
	} else if o, ok := object.(ObjectWithCreatedAt); ok {
		if t := o.CreatedAt(); !t.IsZero() {
			createdAt = &t
		}
	}
	row := &ResourceRow{}
	result := &InformResult{Resource: row}
	var state string
	err = q.QueryRow(ctx, sqlInform, object.Kind(), object.ID(), string(encoded), namespace,
		string(metadata), tags, maxAttempts, createdAt).Scan(
		&row.ID, &row.Kind, &row.ObjectID, &row.Namespace, &state, &row.Attempt, &row.MaxAttempts,
		&row.EncodedObject, &row.Metadata, &row.Tags, &row.CreatedAt, &row.ExternalCreatedAt,
		&result.AlreadyExists)
	if err != nil {
		return nil, err
	}
	row.State = ResourceState(state)
	return result, nil
}

// Invalidate makes a synced resource expired, so that it is worked again
// (delta.invalidate); any other state is an error (55000).
func (c *Client) Invalidate(ctx context.Context, object Object) (*ResourceRow, error) {
	return scanResource(c.pool.QueryRow(ctx, sqlInvalidate, object.Kind(), object.ID()))
}

// ScheduleInformParams names the controller whose inform function
// delta.schedule_inform runs.
type ScheduleInformParams struct {
	ResourceKind    string
	ProcessExisting bool
}

// InformOptions are the fields of delta.inform_options.
type InformOptions struct {
	After   *time.Time
	Labels  map[string]string
	Limit   int
	OrderBy string
}

// ScheduleInform queues a run of the kind's inform function (an informer in
// the database) due now.  opts may be nil.
func (c *Client) ScheduleInform(ctx context.Context, params ScheduleInformParams, opts *InformOptions) error {
	if opts == nil {
		_, err := c.pool.Exec(ctx, sqlScheduleInform, params.ResourceKind, params.ProcessExisting)
		return err
	}
	var labels, orderBy interface{}
	var limit *int
	if opts.Labels != nil {
		encoded, err := json.Marshal(opts.Labels)
		if err != nil {
			return err
		}
		labels = string(encoded)
	}
	if opts.Limit != 0 {
		limit = &opts.Limit
	}
	if opts.OrderBy != "" {
		orderBy = opts.OrderBy
	}
	_, err := c.pool.Exec(ctx, sqlScheduleInformOpts, params.ResourceKind, params.ProcessExisting,
		opts.After, labels, limit, orderBy)
	return err
}

type rowScanner interface {
	Scan(dest ...interface{}) error
}

// scanResource reads the resourceColumns of one row
func scanResource(r rowScanner, extra ...interface{}) (*ResourceRow, error) {
	row := &ResourceRow{}
	var state string
	var errs []byte
	dest := append(extra, &row.ID, &row.Kind, &row.ObjectID, &row.Namespace, &state, &row.Attempt,
		&row.MaxAttempts, &row.EncodedObject, &row.Metadata, &row.Tags, &row.Generation,
		&row.CreatedAt, &row.SyncedAt, &row.ExternalCreatedAt, &errs)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	row.State = ResourceState(state)
	// the errors are informative: an entry of another shape is left out
	_ = json.Unmarshal(errs, &row.Errors)
	return row, nil
}

// sqlState of a server error, "" for any other error
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// interval as pgtype encodes it
func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Status: pgtype.Present}
}
