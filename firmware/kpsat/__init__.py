"""KoproGo satellite: meter pulses, a leak contact and DS18B20 probes over MQTT.

Only `board` touches the hardware (machine, network, onewire, ds18x20,
umqtt.simple); every other module runs unchanged under CPython.
"""
