package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenmgr/tokenmgr/redact"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// Kind tells a [Cache] what it needs to know of the credentials of type T
// it keeps. Fetch, ID and Expiry are required.
type Kind[T any] struct {
	// Fetch gets a new credential. ctx carries the attempt's deadline
	// ([Config.TokenTimeout]). A *[TokenError] in its error says whether
	// another attempt can help; network errors are judged as a Client
	// judges its Source's, and other errors are permanent.
	Fetch func(ctx context.Context) (T, error)
	// ID tells credentials apart (an access token, a session token): one
	// with the ID of the credential being replaced is no replacement.
	ID func(v T) string
	// Expiry returns when v expires; zero when it does not.
	Expiry func(v T) time.Time
	// Secrets names v's secrets beyond its ID, so that no panic value
	// shows them.
	Secrets func(v T) []string
	// Record and FromRecord keep credentials in [Config.Store]; without
	// both, nothing is stored. FromRecord returns ok false for a record
	// that holds no credential, and an error for one that is not usable.
	Record     func(v T, obtained time.Time) *record.Record
	FromRecord func(r *record.Record) (v T, ok bool, err error)
	// Fingerprint and Description identify the configuration, as a
	// [Fingerprinter] and a [Describer] Source do.
	Fingerprint, Description string
}

// Cache keeps one credential of type T in service by the rules a [Client]
// keeps its token: refreshed ahead of expiry in the background, once
// however many goroutines ask and, through a [store.Locker] Store,
// however many processes; replaced once when a server rejects it. Package
// awscreds keeps AWS credentials in one. It is safe for concurrent use;
// Close it to stop background refreshes.
type Cache[T any] struct {
	engine[T]
	send *sendRules[T]
}

// NewCache returns a Cache of credentials of kind k, configured by cfg as
// a Client is, but for Source, Attach and TokenHTTPClient, which are a
// Client's own: the credentials come from k.Fetch, and a transport's
// attach function is given to [Cache.Transport].
func NewCache[T any](k Kind[T], cfg Config) (*Cache[T], error) {
	switch {
	case k.Fetch == nil || k.ID == nil || k.Expiry == nil:
		return nil, errors.New("tokenmgr: Kind needs Fetch, ID and Expiry")
	case cfg.Source != nil || cfg.Attach != nil || cfg.TokenHTTPClient != nil:
		return nil, errors.New("tokenmgr: Config.Source, Attach and TokenHTTPClient are a Client's; a Cache's credentials come from its Kind")
	}
	if err := checkDurations(&cfg); err != nil {
		return nil, err
	}
	c := &Cache[T]{}
	var err error
	if c.send, err = newSendRules[T](&cfg); err != nil {
		return nil, err
	}
	c.engine.init(funcKind[T]{k}, &cfg, k.Fingerprint, k.Description)
	return c, nil
}

// Get returns a valid credential, fetching or refreshing it as needed; one
// in service is returned without taking a lock.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	e, err := c.entry(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return e.tok, nil
}

// Invalidate drops v if it is the credential in service, so the next Get
// fetches a new one; one already replaced is left alone.
func (c *Cache[T]) Invalidate(v T) {
	if e := c.cur.Load(); e != nil && e.id != "" && c.sameID(e, v) {
		c.drop(e)
	}
}

// sameID reports whether v is e's credential; a panic in Kind.ID says no.
func (c *Cache[T]) sameID(e *entry[T], v T) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return e.id == c.kind.ID(v)
}

// Transport returns an [http.RoundTripper] that sends each request through
// base (nil: [http.DefaultTransport]) with the credential in service,
// which attach puts on a copy of the request (a signer goes here), by the
// rules of a Client's transport: [Config.AllowedHosts], no credential on a
// redirect to another origin, and one replay with a fresh credential when
// the answer says it was rejected.
//
// attach is required: without one, every request fails with an error
// saying so, rather than go out without the credential.
func (c *Cache[T]) Transport(base http.RoundTripper, attach func(req *http.Request, v T) error) http.RoundTripper {
	if attach == nil {
		return noAttach{}
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport[T]{cred: &c.engine, rules: c.send, attach: attach, base: base}
}

// noAttach is the transport of a Cache given no attach function.
type noAttach struct{}

func (noAttach) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody(req)
	return nil, errors.New("tokenmgr: Cache.Transport was given no attach function: nothing would put the credential on the request")
}

// String names the credential, never its value: a Cache printed with %v
// shows its key.
func (c *Cache[T]) String() string { return "tokenmgr.Cache(" + c.key + ")" }

// Stats returns counters of what the Cache has done so far.
func (c *Cache[T]) Stats() Stats { return c.stats() }

// Close stops background refreshes, cancels refreshes in flight and waits
// for them to end, as [Client.Close] does. It deletes nothing stored.
func (c *Cache[T]) Close() error {
	c.close()
	return nil
}

// funcKind is a Kind as the engine takes it.
type funcKind[T any] struct{ k Kind[T] }

// Fetch refuses a credential without an ID: it could be neither told
// from the one it replaces nor invalidated.
func (f funcKind[T]) Fetch(ctx context.Context) (T, error) {
	v, err := f.k.Fetch(ctx)
	if err == nil && f.k.ID(v) == "" {
		var zero T
		return zero, fmt.Errorf("%w: Kind.Fetch returned a credential whose ID is empty", ErrBadTokenResponse)
	}
	return v, err
}

func (f funcKind[T]) ID(v T) string        { return f.k.ID(v) }
func (f funcKind[T]) Expiry(v T) time.Time { return f.k.Expiry(v) }

func (f funcKind[T]) secrets(r *redact.Redactor, v T, ok bool) {
	if !ok {
		return
	}
	// Called while a panic is turned into an error: a panic of its own
	// gives no more secrets rather than crash the host.
	defer func() { recover() }()
	r.Add(f.k.ID(v))
	if f.k.Secrets != nil {
		r.Add(f.k.Secrets(v)...)
	}
}

func (f funcKind[T]) record(v T, obtained time.Time) *record.Record {
	if f.k.Record == nil || f.k.FromRecord == nil {
		return nil
	}
	return f.k.Record(v, obtained)
}

// fromRecord refuses a stored credential without an ID, as Fetch does.
func (f funcKind[T]) fromRecord(r *record.Record) (v T, ok bool, err error) {
	if f.k.Record == nil || f.k.FromRecord == nil {
		return v, false, nil
	}
	if v, ok, err = f.k.FromRecord(r); ok && err == nil && f.k.ID(v) == "" {
		var zero T
		return zero, false, errors.New("Kind.FromRecord returned a credential whose ID is empty")
	}
	return v, ok, err
}
