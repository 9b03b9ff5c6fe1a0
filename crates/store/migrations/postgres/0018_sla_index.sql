-- Attainment reads targets by the instant they settled; with the target and its outcome in
-- the index, an unfiltered report counts them from the index alone.
DROP INDEX sla_outcomes_settled;
CREATE INDEX sla_outcomes_settled_counts ON sla_outcomes (settled_at, target, met);
