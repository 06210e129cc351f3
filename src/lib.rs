//! load-balancer: a thread-per-core io_uring HTTP/1.1 load balancer.
