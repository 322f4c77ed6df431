// Package delta is the Go client of the delta PostgreSQL extension: it works
// delta's resources in the application, as the Go library "delta" did, but
// on the extension's tables and with its guarantees.
//
// Controllers are Go values with a Work method, registered per kind with
// AddController.  A Client started with Start claims due resources of its
// namespaces through delta.claim (blocking in the server until work is due,
// woken at commit), runs Work for each in its own goroutine and ends each run
// with delta.complete (batched), delta.fail, delta.snooze or delta.delete.
// Inform, InformTx, Invalidate and ScheduleInform call the SQL functions of
// the same names; Subscribe reads events through a durable delta.events
// cursor.
//
// A claim is held by the claiming session (the default): the client claims
// on a connection of its own that it keeps until every run it claimed has
// ended, so a killed process is rescued by the server at once.  With
// Config.ClaimLease the claims are held by a lease that a heartbeat extends
// instead (for connections that change backends, as behind a transaction
// pooler).
//
// See README.md for building offline with Debian's packages.
package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// NamespaceDefault is the namespace every database with delta has.
const NamespaceDefault = "default"

// Object is what a resource holds: JSON-encoded with encoding/json into
// delta.resource.object, identified by (Kind(), ID()).
type Object interface {
	// ID identifies the object within its kind (delta.resource.object_id).
	ID() string
	// Kind names the controller that works it (delta.resource.kind).  It is
	// called on the zero value of the type when a controller is registered.
	Kind() string
}

// ObjectWithCreatedAt is an Object that knows when the outside system
// created it; Inform passes it as external_created_at.
type ObjectWithCreatedAt interface {
	CreatedAt() time.Time
}

// ResourceState is a state of delta.resource_state.
type ResourceState string

// The states of a resource.
const (
	ResourceStateScheduled ResourceState = "scheduled"
	ResourceStatePending   ResourceState = "pending"
	ResourceStateSynced    ResourceState = "synced"
	ResourceStateFailed    ResourceState = "failed"
	ResourceStateDegraded  ResourceState = "degraded"
	ResourceStateExpired   ResourceState = "expired"
	ResourceStateDeleted   ResourceState = "deleted"
	ResourceStateUnknown   ResourceState = "unknown"
)

// ResourceRow is a row of delta.resource as the client read it.
type ResourceRow struct {
	ID                int64
	Kind              string
	ObjectID          string
	Namespace         string
	State             ResourceState
	EncodedObject     []byte
	Metadata          json.RawMessage
	Tags              []string
	Attempt           int
	MaxAttempts       int
	Generation        int64
	CreatedAt         time.Time
	SyncedAt          *time.Time
	ExternalCreatedAt *time.Time
	// Errors are the recorded errors of earlier attempts, oldest first.
	Errors []AttemptError
}

// AttemptError is an entry of delta.resource.errors.
type AttemptError struct {
	At       string `json:"at"`
	Attempt  int    `json:"attempt"`
	Error    string `json:"error"`
	SQLState string `json:"sqlstate,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Resource is a claimed resource handed to Work: the row and its decoded
// object.
type Resource[T Object] struct {
	*ResourceRow
	// Object is delta.resource.object decoded into T.
	Object T
	// LeaseUntil is when the claim's lease runs out (the client extends it
	// while Work runs); nil for a claim held by the session.
	LeaseUntil *time.Time
}

// ResourceDelete wraps err so that Work returning it ends the resource
// deleted (delta.delete) instead of failed; err's message, if any, is
// recorded as the reason.
func ResourceDelete(err error) error {
	return &resourceDeleteError{err: err}
}

type resourceDeleteError struct{ err error }

func (e *resourceDeleteError) Error() string {
	if e.err == nil {
		return "resource deleted"
	}
	return "resource deleted: " + e.err.Error()
}

func (e *resourceDeleteError) Unwrap() error { return e.err }

// Snooze makes Work end the run "try again after d" (delta.snooze): the
// resource is scheduled again, due after d, and the attempt is given back.
func Snooze(d time.Duration) error {
	return &snoozeError{delay: d}
}

type snoozeError struct{ delay time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("snoozed for %s", e.delay) }

// PanicError is the error a run that panicked is failed with.
type PanicError struct {
	Value interface{}
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic in Work: %v", e.Value) }

func asResourceDelete(err error) (*resourceDeleteError, bool) {
	var d *resourceDeleteError
	return d, errors.As(err, &d)
}

func asSnooze(err error) (*snoozeError, bool) {
	var s *snoozeError
	return s, errors.As(err, &s)
}
