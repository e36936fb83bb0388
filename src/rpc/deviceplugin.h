/* SPDX-License-Identifier: Apache-2.0 */
/* The kubelet deviceplugin v1beta1 API: method paths, constants, and protobuf-c glue for the messages
 * generated from proto/deviceplugin.proto. */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include "deviceplugin.pb-c.h"
#include "rpc.h"

#define DP_VERSION         "v1beta1"
#define DP_HEALTHY         "Healthy"
#define DP_UNHEALTHY       "Unhealthy"
#define DP_PATH_REGISTER   "/v1beta1.Registration/Register"
#define DP_PATH_OPTIONS    "/v1beta1.DevicePlugin/GetDevicePluginOptions"
#define DP_PATH_LIST_WATCH "/v1beta1.DevicePlugin/ListAndWatch"
#define DP_PATH_PREFERRED  "/v1beta1.DevicePlugin/GetPreferredAllocation"
#define DP_PATH_ALLOCATE   "/v1beta1.DevicePlugin/Allocate"
#define DP_PATH_PRE_START  "/v1beta1.DevicePlugin/PreStartContainer"

/* Serializes m into a new buffer. */
int rpc_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_size);
/* rpc_call_reply / rpc_call_send with a protobuf-c message. */
int rpc_call_reply_message(rpc_call *c, const ProtobufCMessage *m);
int rpc_call_send_message(rpc_call *c, const ProtobufCMessage *m);
/* Decodes msg as the given message type; -EBADMSG if it does not parse. Free with
 * protobuf_c_message_free_unpacked. */
int rpc_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t size, ProtobufCMessage **ret);
