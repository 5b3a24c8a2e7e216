from jobcore.cli import run

run()
