from phoneflow.cli import app

app()
