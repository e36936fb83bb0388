/* SPDX-License-Identifier: Apache-2.0 */
#include "deviceplugin.h"

int rpc_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_size)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        if (n > RPC_MAX_MESSAGE)
                return -EMSGSIZE;
        uint8_t *buf = malloc(n + 1); /* +1: an empty message still gets a buffer */
        if (!buf)
                return -ENOMEM;
        size_t k = protobuf_c_message_pack(m, buf);
        if (k != n) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_size = n;
        return 0;
}

int rpc_call_reply_message(rpc_call *c, const ProtobufCMessage *m)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r = rpc_pack(m, &buf, &n);
        if (r < 0)
                return r;
        return rpc_call_reply(c, buf, n);
}

int rpc_call_send_message(rpc_call *c, const ProtobufCMessage *m)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r = rpc_pack(m, &buf, &n);
        if (r < 0)
                return r;
        return rpc_call_send(c, buf, n);
}

int rpc_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t size, ProtobufCMessage **ret)
{
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, msg);
        if (!m)
                return -EBADMSG;
        *ret = m;
        return 0;
}
