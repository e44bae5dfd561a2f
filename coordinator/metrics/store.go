package metrics

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// storeCollector reads the gauges from the store at every scrape.
type storeCollector struct {
	cfg                          Config
	jobs, agents, paused, online *prometheus.Desc
}

func newStoreCollector(cfg Config) *storeCollector {
	return &storeCollector{
		cfg: cfg,
		jobs: prometheus.NewDesc("sparegrid_jobs",
			"Jobs still to finish, by state (queued, running, held) and lane.",
			[]string{"state", "lane"}, nil),
		agents: prometheus.NewDesc("sparegrid_agents",
			"Registered agents, by state (pending, approved, rejected).",
			[]string{"state"}, nil),
		paused: prometheus.NewDesc("sparegrid_agents_paused",
			"Approved agents that paused themselves (infrastructure failures, low disk).",
			nil, nil),
		online: prometheus.NewDesc("sparegrid_agents_online",
			"Approved agents heard from within the online window.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.agents, c.paused, c.online} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed read is reported as an
// invalid metric, which fails the scrape.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ScrapeTimeout)
	defer cancel()
	jobs, err := c.cfg.Source.JobCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, fmt.Errorf("metrics: job counts: %w", err))
	} else {
		for _, g := range laneGauges(jobs, c.cfg.MaxLanes) {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(g.Jobs), string(g.State), g.Lane)
		}
	}
	agents, err := c.cfg.Source.AgentCounts(ctx, c.cfg.Now().Add(-c.cfg.OnlineWindow))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.agents, fmt.Errorf("metrics: agent counts: %w", err))
		return
	}
	for state, n := range map[store.AgentState]int{
		store.AgentPending:  agents.Pending,
		store.AgentApproved: agents.Approved,
		store.AgentRejected: agents.Rejected,
	} {
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(n), string(state))
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, float64(agents.Paused))
	ch <- prometheus.MustNewConstMetric(c.online, prometheus.GaugeValue, float64(agents.Online))
}

// laneGauges turns the store's counts into one count per reported state and
// lane, lanes sorted by name. Every lane with jobs, and the default lane,
// gets all three states. When there are more than maxLanes lanes, the
// maxLanes-1 with the most jobs keep their names (ties broken by name) and
// the others are summed under OtherLane, so at most maxLanes lane values
// appear. States other than queued, running and held are ignored.
func laneGauges(counts []store.JobCount, maxLanes int) []store.JobCount {
	states := jobStates()
	perLane := map[string][]int{store.LaneDefault: make([]int, len(states))}
	for _, c := range counts {
		i := slices.Index(states, c.State)
		if i < 0 {
			continue
		}
		if perLane[c.Lane] == nil {
			perLane[c.Lane] = make([]int, len(states))
		}
		perLane[c.Lane][i] += c.Jobs
	}
	if len(perLane) > maxLanes {
		total := func(l string) int {
			n := 0
			for _, v := range perLane[l] {
				n += v
			}
			return n
		}
		lanes := make([]string, 0, len(perLane))
		for l := range perLane {
			lanes = append(lanes, l)
		}
		slices.SortFunc(lanes, func(a, b string) int {
			return cmp.Or(cmp.Compare(total(b), total(a)), cmp.Compare(a, b))
		})
		other := make([]int, len(states))
		for _, l := range lanes[max(maxLanes-1, 0):] {
			for i, v := range perLane[l] {
				other[i] += v
			}
			delete(perLane, l)
		}
		if perLane[OtherLane] == nil {
			perLane[OtherLane] = make([]int, len(states))
		}
		for i, v := range other {
			perLane[OtherLane][i] += v
		}
	}
	out := make([]store.JobCount, 0, len(perLane)*len(states))
	for _, l := range slices.Sorted(maps.Keys(perLane)) {
		for i, s := range states {
			out = append(out, store.JobCount{State: s, Lane: l, Jobs: perLane[l][i]})
		}
	}
	return out
}
