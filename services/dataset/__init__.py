"""Dataset service: imports annotated image archives, versions them and previews their cases."""
