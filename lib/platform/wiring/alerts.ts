import { DynamoAlerts } from '../../adapters/dynamo/alerts';
import { SnsAlertPublisher } from '../../adapters/sns/alerts-topic';
import { portalLink } from '../../app/portal-link';
import { systemClock } from '../../app/ports/clock';
import { PORTAL_LINK_TTL } from '../../domain/portal-token';
import { dynamoClient } from '../clients/dynamo';
import { snsClient } from '../clients/sns';
import { area } from './base';
import { portalArea } from './portal';

/** Alerts: claimed in the alerts table, published to the alerts topic, linking the usage page. */
export const alertsArea = area((r) => {
  const c = r.config;
  const { portalTokens } = portalArea();
  return {
    alerts: new DynamoAlerts(dynamoClient(), c.ALERTS_TABLE),
    publisher: new SnsAlertPublisher(snsClient(), c.ALERTS_TOPIC_ARN),
    /**
     * Alert messages link the customer's usage page (valid 24 hours, the longest a link lives);
     * without PUBLIC_URL (the API's address is only known to an HTTP request) they name the API path.
     */
    usagePageUrl:
      c.PUBLIC_URL === undefined
        ? undefined
        : (customerId: string) => portalLink({ clock: systemClock, portalTokens }, c.PUBLIC_URL!, customerId, PORTAL_LINK_TTL.maxSeconds).url,
  };
});
