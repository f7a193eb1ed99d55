from gateway.app import start
from gateway.settings import GatewaySettings
from kernel.server import run_main

run_main("gateway", start, GatewaySettings)
