"""One module per `todo-console` subcommand (see console.cli)."""
