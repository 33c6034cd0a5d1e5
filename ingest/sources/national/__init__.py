"""The national networking TXT files (docs/national-files.md), all in one place: the drop
folder (:mod:`.inbox`: judging, moving, indexing), what accepted files become (:mod:`.safety`:
CDSS, CDDY, FZDY; :mod:`.personnel`: RYSS, JZSS, RYQJ, RYXX, RYQY, RYJZ; :mod:`.reports`: FZSS,
YCBJ, TJSJ and the personnel alarm records), the report tables' writer (:mod:`.report_store`)
and the gateway adapter (:mod:`.adapter`) with its settings (:mod:`.settings`). The file
format itself is the sans-IO codec :mod:`minewatch.national` (shared with the simulators).
See README.md here."""
