"""Hidden graders, one file per stage (test_<module>.py). Never released to students."""
