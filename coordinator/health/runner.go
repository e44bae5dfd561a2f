package health

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// Config holds what a Runner needs.
type Config struct {
	Store  store.Store
	Checks []Check
	// MaxHold is how long a scope may be held before its queued jobs are
	// ended with verdict error (default DefaultMaxHold).
	MaxHold time.Duration
	// OnResume, when set, is called after a check lifted its hold, so
	// that waiting agents look for work again.
	OnResume func()
	// OnAbort, when set, is called with the jobs a too-long hold ended.
	OnAbort func(scope store.Scope, jobs []int64, reason string)
	// Probe runs one check; nil means Probe.
	Probe func(ctx context.Context, c Check) Outcome
	Now   func() time.Time
	Log   *slog.Logger
}

// Runner runs the configured checks.
type Runner struct {
	cfg Config
}

// New returns a Runner; checks get their defaults.
func New(cfg Config) *Runner {
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = DefaultMaxHold
	}
	if cfg.Probe == nil {
		cfg.Probe = Probe
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	checks := make([]Check, len(cfg.Checks))
	for i, c := range cfg.Checks {
		checks[i] = c.WithDefaults()
	}
	cfg.Checks = checks
	return &Runner{cfg: cfg}
}

// Run runs every check at its interval, and ends jobs held too long, until
// ctx ends. It first settles what an earlier run left: the holds and open
// downtime of checks no longer configured (or configured with another
// scope) are ended, and a check with an open interval or a hold starts as
// down.
func (r *Runner) Run(ctx context.Context) error {
	down, err := r.settle(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, c := range r.cfg.Checks {
		wg.Go(func() { r.watch(ctx, c, down[c.Name]) })
	}
	wg.Go(func() { r.sweep(ctx) })
	wg.Wait()
	return nil
}

// settle ends what checks that are gone left behind and returns which
// configured checks are down.
func (r *Runner) settle(ctx context.Context) (map[string]bool, error) {
	now := r.cfg.Now()
	scopes := map[string]store.Scope{}
	for _, c := range r.cfg.Checks {
		scopes[c.Name] = store.Scope(c.Scope)
	}
	down := map[string]bool{}
	open, err := r.cfg.Store.Downtime(ctx, now)
	if err != nil {
		return nil, err
	}
	for _, d := range open {
		if d.Ended != nil {
			continue
		}
		if scope, ok := scopes[d.Check]; ok && scope == d.Scope {
			down[d.Check] = true
			continue
		}
		if _, err := r.cfg.Store.CloseDowntime(ctx, d.Check, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		r.cfg.Log.Info("health check no longer configured; its downtime ended", "check", d.Check, "scope", d.Scope)
	}
	holds, err := r.cfg.Store.Holds(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		name, ok := h.CheckName()
		if !ok {
			continue
		}
		if scope, ok := scopes[name]; ok && scope == h.Scope {
			down[name] = true
			continue
		}
		if err := r.cfg.Store.ClearHold(ctx, h.Scope, h.By); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		r.cfg.Log.Info("health check no longer configured; its hold lifted", "check", name, "scope", h.Scope)
		r.resumed()
	}
	return down, nil
}

// watch runs c every interval, with a tenth of jitter, from now on.
func (r *Runner) watch(ctx context.Context, c Check, down bool) {
	for {
		next, err := r.step(ctx, c, down)
		if err != nil && ctx.Err() == nil {
			r.cfg.Log.Error("health check: recording its outcome failed; trying again next interval", "check", c.Name, "err", err)
		} else {
			down = next
		}
		wait := c.Interval - c.Interval/20 + rand.N(c.Interval/10+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// step runs c once and records the transition from down; it returns
// whether c is now down.
func (r *Runner) step(ctx context.Context, c Check, down bool) (bool, error) {
	o := r.cfg.Probe(ctx, c)
	if ctx.Err() != nil {
		return down, ctx.Err()
	}
	now := r.cfg.Now()
	tr := decide(down, o)
	scope := store.Scope(c.Scope)
	switch tr {
	case WentDown, StillDown:
		if _, err := r.cfg.Store.SetHold(ctx, store.Hold{Scope: scope, Reason: holdReason(c, o), Since: now, By: store.CheckHolder(c.Name)}); err != nil {
			return down, err
		}
		if _, err := r.cfg.Store.OpenDowntime(ctx, c.Name, scope, now, store.OneLine(o.Detail)); err != nil {
			return down, err
		}
		if tr == WentDown {
			r.cfg.Log.Warn("health check failed; scope on hold", "check", c.Name, "scope", scope, "why", o.Detail)
		}
		return true, nil
	case CameUp:
		d, err := r.cfg.Store.CloseDowntime(ctx, c.Name, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return down, err
		}
		if err := r.cfg.Store.ClearHold(ctx, scope, store.CheckHolder(c.Name)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return down, err
		}
		r.cfg.Log.Info("health check passes again; hold lifted", "check", c.Name, "scope", scope, "down_for", d.Duration(now))
		r.resumed()
	}
	return false, nil
}

func (r *Runner) resumed() {
	if r.cfg.OnResume != nil {
		r.cfg.OnResume()
	}
}

// sweepEvery is how often jobs held too long are looked for: a hundredth
// of MaxHold, between 10s and 5m.
func (r *Runner) sweepEvery() time.Duration {
	return min(max(r.cfg.MaxHold/100, 10*time.Second), 5*time.Minute)
}

// sweep ends jobs held too long every sweepEvery until ctx ends.
func (r *Runner) sweep(ctx context.Context) {
	for {
		if err := r.abortOverdue(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Error("ending jobs held too long", "err", err)
		}
		every := r.sweepEvery()
		t := time.NewTimer(every - every/20 + rand.N(every/10+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// abortOverdue ends the queued jobs of every scope held longer than
// MaxHold that were queued longer than MaxHold ago.
func (r *Runner) abortOverdue(ctx context.Context) error {
	holds, err := r.cfg.Store.Holds(ctx)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	var errs []error
	for _, a := range overdue(holds, now, r.cfg.MaxHold) {
		ids, err := r.cfg.Store.AbortHeldJobs(ctx, a.scope, a.queuedBefore, a.reason, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(ids) == 0 {
			continue
		}
		r.cfg.Log.Warn("jobs held too long ended with verdict error", "scope", a.scope, "jobs", ids, "reason", a.reason)
		if r.cfg.OnAbort != nil {
			r.cfg.OnAbort(a.scope, ids, a.reason)
		}
	}
	return errors.Join(errs...)
}
