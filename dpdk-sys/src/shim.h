/*
 * Non-inline wrappers for DPDK's static-inline fast-path functions.
 *
 * DPDK implements its per-packet API (rx/tx burst, mbuf alloc/free, ring
 * enqueue/dequeue, ...) as `static inline` functions in its headers, which
 * bindgen cannot link to. Each `dpdk_shim_*` function below calls exactly one
 * of them and is compiled by build.rs (cc crate) with the same flags as DPDK
 * (`pkg-config --cflags libdpdk`). Keep this file trivial: no logic here.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

/* ethdev fast path */
uint16_t dpdk_shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t dpdk_shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* mbuf allocation */
struct rte_mbuf *dpdk_shim_pktmbuf_alloc(struct rte_mempool *mp);
int dpdk_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp,
                                 struct rte_mbuf **mbufs, unsigned int count);
void dpdk_shim_pktmbuf_free(struct rte_mbuf *m);
void dpdk_shim_pktmbuf_reset(struct rte_mbuf *m);

/* mbuf reference count */
uint16_t dpdk_shim_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t dpdk_shim_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);

/* mbuf data area */
char *dpdk_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *dpdk_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *dpdk_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int dpdk_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
void *dpdk_shim_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t dpdk_shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t dpdk_shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t dpdk_shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t dpdk_shim_pktmbuf_tailroom(const struct rte_mbuf *m);
int dpdk_shim_pktmbuf_is_contiguous(const struct rte_mbuf *m);

/* rings */
unsigned int dpdk_shim_ring_enqueue_burst(struct rte_ring *r,
                                          void *const *obj_table,
                                          unsigned int n,
                                          unsigned int *free_space);
unsigned int dpdk_shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                          unsigned int n,
                                          unsigned int *available);
unsigned int dpdk_shim_ring_count(const struct rte_ring *r);
unsigned int dpdk_shim_ring_free_count(const struct rte_ring *r);

/* per-lcore state, timing */
int dpdk_shim_errno(void);
unsigned int dpdk_shim_lcore_id(void);
uint64_t dpdk_shim_rdtsc(void);
void dpdk_shim_pause(void);

#endif /* DPDK_SYS_SHIM_H */
