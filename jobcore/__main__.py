from jobcore.cli.main import run

run()
