-- Leasing reads each lane's queued jobs in the lane's own order (priority,
-- then age) and counts the leases each lane got lately: index both.
DROP INDEX jobs_lane_started;
CREATE INDEX jobs_started_lane ON jobs (started_at, lane);
CREATE INDEX jobs_queue_lane ON jobs (state, arch, lane, priority DESC, id);
