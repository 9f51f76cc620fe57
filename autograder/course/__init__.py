"""What the course is: the manifest, the data splits and their hashes, model resolution, stubs
generated from solutions. The ground floor: it imports nothing from grading/, batch/, reports/ or the
release. Trusted code that never runs a submission."""
