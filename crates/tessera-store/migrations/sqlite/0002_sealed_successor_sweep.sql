-- The periodic sweep clears sealed successors once no grace retry can use them
-- (`clear_stale_successors`). Only families rotated within the last grace window keep one, so
-- this partial index stays small and the sweep never scans the whole table.
CREATE INDEX refresh_families_with_successor ON refresh_families (rotated_at)
    WHERE sealed_successor IS NOT NULL;
