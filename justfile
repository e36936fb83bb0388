# nvdp tasks. `just --list --list-submodules` shows every recipe; the GPU deployment recipes are in
# the nvidia-device-plugin module: `just nvidia-device-plugin::install`, `::verify`, `::test`, ...
# Settings come from the environment or from .env.local in this directory (KEY=value lines), e.g.
#   NVIDIA_DEVICE_PLUGIN_NAMESPACE=gpu-system
set dotenv-filename := ".env.local"
set dotenv-load

mod nvidia-device-plugin

# List the recipes, those of the modules included.
default:
    @just --justfile "{{ justfile() }}" --list --list-submodules
