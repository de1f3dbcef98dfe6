"""One module per resource, each owning its APIRouter."""
