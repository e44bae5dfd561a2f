-- Scheduling: priorities and lanes, result reuse, capability routing and
-- confirmation runs.

-- priority runs from 1 to 10, higher first; lane names the queue a job is
-- served from (see store.LeaseJob). reused_from names the job whose result
-- stands for this one. tests, when not '[]', are the only tests to run;
-- needs is a JSON store.JobNeeds (what an agent must offer); avoid_agents
-- is a JSON array of agent ids that must not take the job; apt_sources is
-- a JSON array of apt source lines to add to the testbed.
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10);
ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN reused_from INTEGER REFERENCES jobs (id);
ALTER TABLE jobs ADD COLUMN tests TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN needs TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN avoid_agents TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN apt_sources TEXT NOT NULL DEFAULT '[]';

DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs (state, arch, release, priority DESC, id);
CREATE INDEX jobs_lane_started ON jobs (lane, started_at);
CREATE INDEX jobs_reuse ON jobs (package, release, arch, version) WHERE state = 'done';
