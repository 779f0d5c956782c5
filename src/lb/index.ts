export { Balancer, type BalancerOptions } from './balancer';
export * from './types';
