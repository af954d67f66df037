from phoneflow.cli import app

# Guarded: `phoneflow serve --workers N` spawns processes, and each imports the main module again.
if __name__ == "__main__":
    app()
