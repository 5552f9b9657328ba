<?php
/**
 * The verdict of the Site Health test, from what the sidecar answered.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Pure: answers in, a status and the lines to show out.
 */
final class Closte_Operator_Health {

	/**
	 * Judges the sidecar: a URL that may carry the token (loopback or https),
	 * reachable (GET /healthz), token accepted and every domain Ready
	 * (GET /v1/domains), nothing waiting in the queue.
	 *
	 * @param Closte_Operator_Config      $config  The settings.
	 * @param Closte_Operator_Result      $health  Answer to GET /healthz.
	 * @param Closte_Operator_Result|null $domains Answer to GET /v1/domains (null when not asked).
	 * @param int                         $queued  Writes waiting in the queue.
	 * @return array{status: string, summary: string, problems: array<int, string>, not_ready: array<int, array>}
	 */
	public static function evaluate( Closte_Operator_Config $config, Closte_Operator_Result $health, ?Closte_Operator_Result $domains, int $queued ): array {
		$verdict = array(
			'status'    => 'good',
			'summary'   => 'The closte-operator sidecar is reachable and accepts the token',
			'problems'  => array(),
			'not_ready' => array(),
		);
		if ( '' !== $config->token_error ) {
			$verdict['problems'][] = 'No sidecar token: ' . $config->token_error . '.';
		}
		if ( '' === $config->client_key ) {
			$verdict['problems'][] = 'CLOSTE_CLIENT_API_KEY is not defined in wp-config.php: Ultimate Multisite\'s Closte integration sends nothing, so none of its calls is routed. Define it as a placeholder (any random string, never a Closte key).';
		}
		if ( '' !== $config->url_error ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = 'The closte-operator sidecar URL would expose the token';
			$verdict['problems'][] = $config->url_error . '.';
		} elseif ( ! $health->ok() ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = 'The closte-operator sidecar cannot be reached';
			$verdict['problems'][] = sprintf( 'GET %s/healthz: %s.', $config->url, $health->message() );
		} elseif ( null === $domains || 401 === $domains->status || 403 === $domains->status ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = 'The closte-operator sidecar refuses the token';
			$verdict['problems'][] = null === $domains ? 'The token was not tried.' : sprintf( 'GET %s/v1/domains: %s.', $config->url, $domains->message() );
		} elseif ( ! $domains->ok() || ! is_array( $domains->json() ) ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = 'The closte-operator sidecar cannot list the domains';
			$verdict['problems'][] = sprintf( 'GET %s/v1/domains: %s.', $config->url, $domains->message() );
		} else {
			$json = $domains->json();
			foreach ( isset( $json['domains'] ) && is_array( $json['domains'] ) ? $json['domains'] : array() as $entry ) {
				if ( is_array( $entry ) && empty( $entry['ready'] ) ) {
					$verdict['not_ready'][] = $entry;
				}
			}
			if ( array() !== $verdict['not_ready'] ) {
				$verdict['status']  = 'recommended';
				$verdict['summary'] = sprintf( '%d mapped domain(s) are not ready yet', count( $verdict['not_ready'] ) );
			}
		}
		if ( $queued > 0 ) {
			if ( 'good' === $verdict['status'] ) {
				$verdict['status']  = 'recommended';
				$verdict['summary'] = 'Domain changes are waiting to reach the closte-operator sidecar';
			}
			$verdict['problems'][] = sprintf( '%d domain change(s) are queued and retried automatically.', $queued );
		}
		return $verdict;
	}
}
