<?php
/**
 * Site Health: the pure verdict (certificates ending soon, an overdue sync,
 * next steps), and the test registered once, on the main site, as an
 * asynchronous REST test for network administrators.
 *
 * @package Closte_Operator
 */

require_once __DIR__ . '/admin-fakes.php';

final class HealthTest extends Closte_Operator_Admin_Test_Case {

	const NOW = 1700000000;

	private static function listed( array $entries ): Closte_Operator_Result {
		return new Closte_Operator_Result( 200, json_encode( array( 'domains' => $entries ) ) );
	}

	private static function ready( string $domain, int $ends_in ): array {
		return array(
			'domain'      => $domain,
			'name'        => str_replace( '.', '-', $domain ),
			'stage'       => 'done',
			'ready'       => true,
			'conditions'  => array(),
			'certificate' => array( 'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', self::NOW + $ends_in ) ),
		);
	}

	private function evaluate( ?Closte_Operator_Result $domains, int $queued = 0, bool $overdue = false, ?int $next = null ): array {
		return Closte_Operator_Health::evaluate( $this->sidecar->config, new Closte_Operator_Result( 200, '{}' ), $domains, $queued, self::NOW, $overdue, $next, '/run/token' );
	}

	public function test_certificates_ending_within_14_days_are_recommended(): void {
		$fine = self::ready( 'fine.example.com', 30 * 86400 );
		$this->assertSame( 'good', $this->evaluate( self::listed( array( $fine ) ) )['status'] );

		$soon    = self::ready( 'soon.example.com', 5 * 86400 );
		$expired = self::ready( 'old.example.com', -86400 );
		$verdict = $this->evaluate( self::listed( array( $fine, $soon, $expired ) ) );
		$this->assertSame( 'recommended', $verdict['status'] );
		$this->assertSame( '2 certificates of mapped domains end within 14 days', $verdict['summary'] );
		$this->assertSame( array( 'soon.example.com', 'old.example.com' ), array_column( $verdict['expiring'], 'domain' ) );
		$this->assertSame( array(), $verdict['not_ready'] );
		$this->assertSame( '1 certificate of a mapped domain ends within 14 days', $this->evaluate( self::listed( array( $soon ) ) )['summary'] );

		// just outside the window
		$this->assertSame( 'good', $this->evaluate( self::listed( array( self::ready( 'edge.example.com', 14 * 86400 + 60 ) ) ) )['status'] );

		// a domain not ready is listed as such, not twice
		$broken  = array(
			'ready' => false,
			'stage' => 'ssl-failed',
		) + $expired;
		$verdict = $this->evaluate( self::listed( array( $broken, $soon ) ) );
		$this->assertSame( '1 mapped domain is not ready', $verdict['summary'] );
		$this->assertSame( array( 'old.example.com' ), array_column( $verdict['not_ready'], 'domain' ) );
		$this->assertSame( array( 'soon.example.com' ), array_column( $verdict['expiring'], 'domain' ) );
	}

	public function test_an_overdue_sync_is_recommended_with_what_to_check(): void {
		$fine    = self::listed( array( self::ready( 'fine.example.com', 30 * 86400 ) ) );
		$verdict = $this->evaluate( $fine, 0, true, self::NOW - 3 * 3600 );
		$this->assertSame( 'recommended', $verdict['status'] );
		$this->assertSame( 'The closte-operator domain sync is overdue', $verdict['summary'] );
		$this->assertStringStartsWith( 'The periodic domain sync was due 3 hours ago and has not run.', $verdict['problems'][0] );
		$this->assertStringContainsString( 'DISABLE_WP_CRON', $verdict['problems'][0] );
		$this->assertStringStartsWith( 'The periodic domain sync has not run when it should have.', $this->evaluate( $fine, 0, true, null )['problems'][0] );
		$this->assertSame( 'good', $this->evaluate( $fine, 0, false, self::NOW - 3 * 3600 )['status'] );

		// an overdue sync never hides a sidecar that is down
		$verdict = Closte_Operator_Health::evaluate( $this->sidecar->config, Closte_Operator_Result::unreachable( 'cURL error 7' ), null, 0, self::NOW, true, self::NOW - 7200 );
		$this->assertSame( 'critical', $verdict['status'] );
		$this->assertSame( 'The closte-operator sidecar cannot be reached', $verdict['summary'] );
		$this->assertCount( 3, $verdict['problems'] );

		$this->assertSame( '1 domain change is queued and retried automatically.', $this->evaluate( $fine, 1 )['problems'][0] );
		$this->assertSame( '45 minutes', Closte_Operator_Health::duration( 2700 ) );
		$this->assertSame( '24 hours', Closte_Operator_Health::duration( 86400 ) );
		$this->assertSame( '3 days', Closte_Operator_Health::duration( 3 * 86400 ) );
	}

	public function test_a_problem_comes_with_its_next_step(): void {
		$down = Closte_Operator_Health::evaluate( $this->sidecar->config, Closte_Operator_Result::unreachable( 'cURL error 7' ), null, 0, self::NOW );
		$this->assertStringContainsString( 'cURL error 7', $down['problems'][0] );
		$this->assertStringContainsString( 'kubectl logs POD -c closte-sidecar', $down['problems'][1] );

		$refused = $this->evaluate( new Closte_Operator_Result( 401, '{"error":"wrong token"}' ) );
		$this->assertSame( 'critical', $refused['status'] );
		$this->assertStringContainsString( 'HTTP 401: wrong token', $refused['problems'][0] );
		$this->assertStringContainsString( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE (/run/token) must be the sidecar\'s own', $refused['problems'][1] );

		$broken = $this->evaluate( new Closte_Operator_Result( 503, '{"error":"Kubernetes API server unreachable"}' ) );
		$this->assertSame( 'The closte-operator sidecar cannot list the domains', $broken['summary'] );
		$this->assertStringContainsString( 'kubectl logs POD -c closte-sidecar', $broken['problems'][1] );
	}

	public function test_the_test_is_asynchronous_and_on_the_main_site_only(): void {
		Closte_Operator_Admin::register( $this->plugin );
		$hooks = Closte_WP::$state['hooks'];
		$this->assertArrayHasKey( 'site_status_tests', $hooks );
		$this->assertArrayHasKey( 'rest_api_init', $hooks );
		foreach ( array( 'closte_operator_sync', 'closte_operator_queue', 'closte_operator_clear', 'closte_operator_interval' ) as $action ) {
			$this->assertArrayHasKey( 'network_admin_edit_' . $action, $hooks );
		}

		$core  = array(
			'direct' => array( 'php_version' => array() ),
			'async'  => array(),
		);
		$tests = $this->admin->site_status_tests( $core );
		$this->assertSame( array( 'php_version' ), array_keys( $tests['direct'] ), 'no direct test' );
		$test = $tests['async']['closte_operator_sidecar'];
		$this->assertSame( 'http://example.test/wp-json/closte-operator/v1/site-health', $test['test'] );
		$this->assertTrue( $test['has_rest'] );
		$this->assertSame( array( $this->admin, 'site_health_test' ), $test['async_direct_test'] );
		$this->assertTrue( is_callable( $test['async_direct_test'] ) );

		Closte_WP::$state['main_site'] = false;
		$this->assertSame( $core, $this->admin->site_status_tests( $core ), 'not on the other sites' );

		$this->admin->rest_routes();
		$route = Closte_WP::$state['routes']['closte-operator/v1/site-health'];
		$this->assertSame( 'GET', $route['methods'] );
		$this->assertSame( array( $this->admin, 'site_health_test' ), $route['callback'] );
		$this->assertTrue( ( $route['permission_callback'] )() );
		Closte_WP::$state['can'] = false;
		$this->assertFalse( ( $route['permission_callback'] )() );
	}

	public function test_the_result_lists_domains_with_their_next_step(): void {
		$this->listing(
			array(
				$this->entry( 'soon.example.com', array( 'certificate' => array( 'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', time() + 3 * 86400 + 600 ) ) ) ),
				$this->entry(
					'rejected.example.com',
					array(
						'stage'   => 'failed',
						'ready'   => false,
						'reason'  => 'DomainRejected',
						'message' => 'Closte refused it',
					)
				),
			)
		);
		$result = $this->admin->site_health_test();
		$this->assertSame( array( 'GET /healthz', 'GET /v1/domains' ), $this->transport->lines() );
		$this->assertSame( 'recommended', $result['status'] );
		$this->assertSame( 'closte_operator_sidecar', $result['test'] );
		$this->assertStringContainsString( '<li><code>rejected.example.com</code> (Failed) &mdash; Failed: DomainRejected: Closte refused it. For the details and what to fix, run closte-operator status rejected-example-com.</li>', $result['description'] );
		$this->assertStringContainsString( '<p>Certificates ending within 14 days:</p><ul><li><code>soon.example.com</code> (Done) &mdash; The certificate expires in 3 days', $result['description'] );

		$this->plugin->overdue = true;
		$this->plugin->next    = time() - 7200;
		$this->listing( array( $this->entry( 'fine.example.com' ) ) );
		$result = $this->admin->site_health_test();
		$this->assertSame( 'recommended', $result['status'] );
		$this->assertStringContainsString( 'The periodic domain sync was due 2 hours ago', $result['description'] );
	}

	public function test_a_queue_table_that_cannot_be_created_is_critical(): void {
		$verdict = Closte_Operator_Health::evaluate( $this->sidecar->config, new Closte_Operator_Result( 200, '{}' ), self::listed( array() ), 0, self::NOW, false, null, '/run/token', "CREATE command denied to user 'wp'" );
		$this->assertSame( 'critical', $verdict['status'] );
		$this->assertStringContainsString( 'queue cannot keep', $verdict['summary'] );
		$this->assertStringContainsString( "CREATE command denied to user 'wp'", implode( ' ', $verdict['problems'] ) );
		$this->assertSame( 'good', $this->evaluate( self::listed( array() ) )['status'], 'no problem, nothing said' );
	}
}
