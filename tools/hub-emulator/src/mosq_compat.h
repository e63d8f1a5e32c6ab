// The broker plugin headers (mosquitto-dev) use the error and log constants from the client
// library header mosquitto.h (libmosquitto-dev). Use it when present; otherwise define the few
// values this plugin needs (stable since mosquitto 1.x/2.0).
#pragma once

#if __has_include(<mosquitto.h>)
#include <mosquitto.h>
#else
enum
{
    MOSQ_ERR_SUCCESS = 0,
    MOSQ_ERR_NOMEM = 1,
    MOSQ_ERR_INVAL = 3,
    MOSQ_ERR_AUTH = 11,
    MOSQ_ERR_ACL_DENIED = 12,
    MOSQ_ERR_UNKNOWN = 13,
};
#define MOSQ_LOG_INFO (1 << 0)
#define MOSQ_LOG_NOTICE (1 << 1)
#define MOSQ_LOG_WARNING (1 << 2)
#define MOSQ_LOG_ERR (1 << 3)
#endif
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
