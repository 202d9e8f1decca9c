"""Published numbers of the reproduced papers, as data files (CSV/YAML) with their sources."""
