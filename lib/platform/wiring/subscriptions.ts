import { SnsAlertSubscriptions } from '../../adapters/sns/subscriptions';
import { snsClient } from '../clients/sns';
import { area } from './base';

/** Customers' alert e-mail addresses as subscriptions of the alerts topic (customers PUT only). */
export const subscriptionsArea = area((r) => ({ subscriptions: new SnsAlertSubscriptions(snsClient(), r.config.ALERTS_TOPIC_ARN) }));
