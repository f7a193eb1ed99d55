from kernel.server import run_main
from services.training.app import start

run_main("training", start)
