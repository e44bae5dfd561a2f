-- Failure handling: idempotent results, retrying elsewhere, agents that
-- pause themselves.

-- idempotency_key is the hex sha256 of the result's envelope; an agent
-- that sends the same result twice gets the first one acknowledged.
ALTER TABLE results ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX results_idempotency_key ON results (idempotency_key) WHERE idempotency_key != '';

-- When a job is queued again after an infrastructure failure, the agent it
-- failed on and when, so another agent is preferred for the next attempt.
ALTER TABLE jobs ADD COLUMN retry_agent_id INTEGER REFERENCES agents (id);
ALTER TABLE jobs ADD COLUMN requeued_at INTEGER;

-- Why the agent paused itself (empty when it is not paused), and since when.
ALTER TABLE agents ADD COLUMN paused TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN paused_at INTEGER;
