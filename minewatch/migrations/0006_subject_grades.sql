-- minewatch schema v6: grades of the personnel and output rules (migration 0004 added the
-- rules, 0005 the grading table). Data, like every grade: change them per deployment.
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('sos',               '*', 'red',    120),  -- 求救: a person in distress
    ('restricted_area',   '*', 'orange', 600),  -- 进入限制区域
    ('area_overcrowding', '*', 'orange', 900),  -- 区域超员
    ('mine_overcrowding', '*', 'orange', 900),  -- 矿井超员
    ('leader_absent',     '*', 'orange', 1800), -- 带班空岗
    ('overtime',          '*', 'yellow', NULL), -- 超时
    ('output_month',      '*', 'orange', NULL), -- 月产量超核定能力10%
    ('output_year',       '*', 'orange', NULL)  -- 年产量超核定能力110%
ON CONFLICT (rule, classification) DO NOTHING;
