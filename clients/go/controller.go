package delta

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Worker works resources whose object is a T.
type Worker[T Object] interface {
	// Work makes the outside world match resource.Object.  Returning nil
	// marks the resource synced; an error fails the attempt (retried after
	// the controller's back-off, degraded at max_attempts), except the
	// errors of ResourceDelete and Snooze.  A panic is recovered and fails
	// the attempt.
	Work(ctx context.Context, resource *Resource[T]) error
}

// Controller is what AddController registers: a Worker.  (Informers run in
// the database: an inform function registered with delta.register_controller;
// from Go, call Client.Inform.)
type Controller[T Object] interface {
	Worker[T]
}

// WorkerDefaults can be embedded in a controller to give it the optional
// methods with their default behaviour.
type WorkerDefaults[T Object] struct{}

// Timeout is the time limit of one run of Work: 0 uses
// Config.ResourceWorkTimeout, a negative value means none.
func (WorkerDefaults[T]) Timeout(*Resource[T]) time.Duration { return 0 }

type timeouter[T Object] interface {
	Timeout(*Resource[T]) time.Duration
}

// Controllers is the set of controllers a Client works, one per kind.
type Controllers struct {
	byKind map[string]*controllerInfo
}

// controllerInfo is one registered controller, with its type erased.
type controllerInfo struct {
	kind string
	// work decodes the claimed row into the controller's type and runs Work;
	// defaultTimeout is Config.ResourceWorkTimeout
	work func(ctx context.Context, c *claim, defaultTimeout time.Duration) error
}

// NewControllers returns an empty set of controllers.
func NewControllers() *Controllers {
	return &Controllers{byKind: make(map[string]*controllerInfo)}
}

// AddController registers controller for the kind of T.  It panics if that
// kind has a controller already or is empty; AddControllerSafely returns the
// error instead.
func AddController[T Object](controllers *Controllers, controller Controller[T]) {
	if err := AddControllerSafely[T](controllers, controller); err != nil {
		panic(err)
	}
}

// AddControllerSafely is AddController returning an error instead of
// panicking.
func AddControllerSafely[T Object](controllers *Controllers, controller Controller[T]) error {
	var zero T
	kind := zero.Kind()
	if kind == "" {
		return fmt.Errorf("delta: the kind of %T is empty", zero)
	}
	if controller == nil {
		return fmt.Errorf("delta: nil controller for kind %q", kind)
	}
	if _, ok := controllers.byKind[kind]; ok {
		return fmt.Errorf("delta: a controller for kind %q is already registered", kind)
	}
	controllers.byKind[kind] = &controllerInfo{
		kind: kind,
		work: func(ctx context.Context, c *claim, defaultTimeout time.Duration) error {
			var object T
			if err := json.Unmarshal(c.row.EncodedObject, &object); err != nil {
				return fmt.Errorf("decoding the object of resource %d (kind %q) into %T: %w",
					c.row.ID, kind, object, err)
			}
			resource := &Resource[T]{ResourceRow: &c.row, Object: object, LeaseUntil: c.leaseUntil}
			timeout := defaultTimeout
			if t, ok := controller.(timeouter[T]); ok {
				if own := t.Timeout(resource); own != 0 {
					timeout = own
				}
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return controller.Work(ctx, resource)
		},
	}
	return nil
}

// kinds of the registered controllers, sorted
func (c *Controllers) kinds() []string {
	kinds := make([]string, 0, len(c.byKind))
	for k := range c.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
