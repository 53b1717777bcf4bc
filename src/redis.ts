export { type RedisClient, redisStore, type RedisStoreOptions } from './stores/redis.js';
