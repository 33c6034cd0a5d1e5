-- minewatch schema v11: off-delay of the threshold rules (docs/alarms.md, "Off-delay").
--
-- ISA-18.2's remedy for chattering alarms besides deadband: an alarm returns to normal only
-- once its condition has been clear for off_delay_s (event time); a set reading within it
-- continues the same episode. Applies to the upper alarm, power-off, pre-warnings and lower
-- rules. NULL or 0: the alarm clears at its first clear reading, as before.
ALTER TABLE points
    ADD COLUMN off_delay_s double precision CHECK (off_delay_s >= 0);
