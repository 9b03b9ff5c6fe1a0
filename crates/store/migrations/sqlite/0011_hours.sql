-- Business hours: when a team or a brand is open. The week is one line per open day,
-- `mon 09:00-13:00 16:00-20:00`, in the schedule's IANA time zone; holidays are local dates
-- (`2026-03-21`) separated by commas. seva_domain::hours reads and checks both.
CREATE TABLE business_hours (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    time_zone   TEXT NOT NULL,
    week        TEXT NOT NULL,
    holidays    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A conversation's clock is its team's schedule, else its brand's; neither: always open.
ALTER TABLE brands ADD COLUMN business_hours_id BIGINT REFERENCES business_hours (id);
ALTER TABLE teams ADD COLUMN business_hours_id BIGINT REFERENCES business_hours (id);
