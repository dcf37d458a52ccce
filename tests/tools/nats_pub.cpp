// nats_pub: publishes one message to a JetStream stream with libnats, as any program
// that is not queuectl would, and waits for the stream to store it.
//   nats_pub URL SUBJECT BODY [MSG-ID]    exit 0 once stored, 1 otherwise
#include <nats/nats.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: nats_pub URL SUBJECT BODY [MSG-ID]\n");
    return 2;
  }
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsMsg* msg = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
  if (s == NATS_OK) {
    s = natsConnection_JetStream(&js, nc, nullptr);
  }
  if (s == NATS_OK) {
    s = natsMsg_Create(&msg, argv[2], nullptr, argv[3], static_cast<int>(std::strlen(argv[3])));
  }
  if (s == NATS_OK && argc == 5) {
    s = natsMsgHeader_Set(msg, "Nats-Msg-Id", argv[4]);
  }
  if (s == NATS_OK) {
    s = js_PublishMsg(&ack, js, msg, nullptr, &jerr);
  }
  if (s != NATS_OK) {
    fprintf(stderr, "nats_pub: %s\n", natsStatus_GetText(s));
  }
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(msg);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
  return s == NATS_OK ? 0 : 1;
}
