-- The disk fills up as the run ends: the write of its end fails.
CREATE TRIGGER full_disk BEFORE UPDATE OF finished_at ON runs
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
