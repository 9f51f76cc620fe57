"""What the course is: the manifest, the data splits and their hashes, model resolution, stubs
generated from solutions, the student release. Trusted code that never runs a submission."""
